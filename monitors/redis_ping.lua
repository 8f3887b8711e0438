-- redis_ping: send PING to each host's Redis; expect +PONG.
--
--   monitor lua:redis_ping                      (port 6379)
--   monitor lua:redis_ping port=6380 password=s3cret timeout=3

local port = tonumber(opts.port) or 6379
local timeout = tonumber(opts.timeout) or 5

function check(host)
  local conn = tcp.connect(host, port, { timeout = timeout })
  if opts.password then
    conn:send("AUTH " .. opts.password .. "\r\n")
    local line = conn:read_line()
    if line ~= "+OK" then
      conn:close()
      return false, "AUTH: " .. tostring(line)
    end
  end
  conn:send("PING\r\n")
  local line = conn:read_line()
  conn:close()
  if line == "+PONG" then
    return true
  end
  return false, "expected +PONG, got " .. tostring(line)
end
