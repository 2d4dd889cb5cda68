-- Shared by the wrk scripts: read one value per line from a file (ids, name prefixes).
local M = {}

function M.lines(path)
  local values = {}
  local file = assert(io.open(path, "r"), "cannot open " .. tostring(path))
  for line in file:lines() do
    if #line > 0 then values[#values + 1] = line end
  end
  file:close()
  assert(#values > 0, path .. " is empty")
  return values
end

-- Each wrk thread has its own Lua state: seed from the clock and a table address so that
-- threads started in the same second still draw different sequences.
function M.seed()
  local addr = tonumber(tostring({}):match("0x(%x+)") or "0", 16) or 0
  math.randomseed(os.time() + addr % 1000003)
end

-- wrk.format replaces wrk.headers (the -H options) when given headers of its own: merge them,
-- so an Authorization header passed on the command line reaches every request.
function M.headers(own)
  local merged = {}
  for name, value in pairs(wrk.headers) do merged[name] = value end
  for name, value in pairs(own) do merged[name] = value end
  return merged
end

return M
