-- GET /fhir/Patient?name=<prefix>&_count=10 with prefixes of family names present in the DB.
package.path = debug.getinfo(1, "S").source:match("@(.*/)") .. "?.lua;" .. package.path
local common = require("common")
local prefixes

function init(args)
  common.seed()
  prefixes = common.lines(args[1])
end

function request()
  return wrk.format("GET", "/fhir/Patient?name=" .. prefixes[math.random(#prefixes)] ..
                    "&_count=10", common.headers({["Accept"] = "application/fhir+json"}))
end
