-- POST /fhir/Patient with a realistic body (name, identifier, telecom, address, birth date).
package.path = debug.getinfo(1, "S").source:match("@(.*/)") .. "?.lua;" .. package.path
local common = require("common")
local families = {"Smith", "Johnson", "Williams", "Brown", "Jones", "Garcia", "Miller",
                  "Davis", "Rodriguez", "Martinez", "Wilson", "Anderson", "Taylor", "Moore"}
local given = {"Mary", "James", "Patricia", "Robert", "Linda", "Michael", "Susan", "David"}
local counter = 0
local headers = {["Content-Type"] = "application/fhir+json",
                 ["Accept"] = "application/fhir+json"}

function init(args)
  local addr = tonumber(tostring({}):match("0x(%x+)") or "0", 16) or 0
  math.randomseed(os.time() + addr % 1000003)
end

function request()
  counter = counter + 1
  local female = math.random(2) == 1
  local body = string.format(
    '{"resourceType":"Patient","identifier":[{"system":"urn:oid:2.16.840.1.113883.4.1",' ..
    '"value":"%09d"}],"active":true,"name":[{"use":"official","family":"%s",' ..
    '"given":["%s"]}],"telecom":[{"system":"phone","value":"555-%04d","use":"home"}],' ..
    '"gender":"%s","birthDate":"%04d-%02d-%02d","address":[{"line":["%d Main St"],' ..
    '"city":"Springfield","state":"IL","postalCode":"62%03d","country":"US"}]}',
    math.random(100000000, 999999999), families[math.random(#families)],
    given[math.random(#given)], math.random(1000, 9999), female and "female" or "male",
    math.random(1940, 2005), math.random(12), math.random(28), math.random(999),
    math.random(700, 799))
  return wrk.format("POST", "/fhir/Patient", common.headers(headers), body)
end
