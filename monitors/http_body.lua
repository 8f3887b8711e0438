-- http_body: fetch a URL from each host; check the status and, optionally,
-- a pattern in the body or a field of a JSON body.
--
--   monitor lua:http_body path=/health
--   monitor lua:http_body port=8080 path=/status status=200 match=ready
--   monitor lua:http_body https=yes path=/api/health json=status.db=up
--
-- match= is a Lua pattern (string.find); json=a.b=VALUE compares the field
-- a.b of the decoded body, as text, with VALUE.

local https = opts.https == "yes"
local port = tonumber(opts.port) or (https and 443 or 80)
local path = opts.path or "/"
local want_status = tonumber(opts.status) or 200
local timeout = tonumber(opts.timeout) or 10

-- The value at "a.b.c" in a decoded JSON document, or nil.
local function field(doc, name)
  for part in name:gmatch("[^.]+") do
    if type(doc) ~= "table" then
      return nil
    end
    doc = doc[tonumber(part) or part]
  end
  return doc
end

function check(host)
  if host:find(":", 1, true) then
    host = "[" .. host .. "]" -- an IPv6 address
  end
  local url = (https and "https" or "http") .. "://" .. host .. ":" .. port .. path
  local response = http.request { url = url, timeout = timeout, insecure = opts.insecure == "yes" }
  if response.status ~= want_status then
    return false, "status " .. response.status .. " (expected " .. want_status .. ")"
  end
  if opts.match and not response.body:find(opts.match) then
    return false, "body does not match " .. opts.match
  end
  if opts.json then
    local name, want = opts.json:match("^([^=]+)=(.*)$")
    local ok, doc = pcall(json.decode, response.body)
    if not ok then
      return false, "body is not JSON"
    end
    local got = field(doc, name)
    if tostring(got) ~= want then
      return false, name .. " is " .. tostring(got) .. " (expected " .. want .. ")"
    end
  end
  return true
end
