-- GET /fhir/Patient/{id} with ids drawn at random from the file given after `--`.
package.path = debug.getinfo(1, "S").source:match("@(.*/)") .. "?.lua;" .. package.path
local common = require("common")
local ids

function init(args)
  common.seed()
  ids = common.lines(args[1])
end

function request()
  return wrk.format("GET", "/fhir/Patient/" .. ids[math.random(#ids)],
                    common.headers({["Accept"] = "application/fhir+json"}))
end
