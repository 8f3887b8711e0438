-- tcp_port: connect to a port on each host; optionally send a line and
-- expect a reply that contains a pattern.
--
--   monitor lua:tcp_port port=22
--   monitor lua:tcp_port port=22 expect=^SSH-
--   monitor lua:tcp_port port=11211 send=version expect=^VERSION timeout=2
--
-- expect= is a Lua pattern matched against the first line the server sends.

local port = tonumber(opts.port) or error("tcp_port needs port=N")
local timeout = tonumber(opts.timeout) or 10

function check(host)
  local conn = tcp.connect(host, port, { timeout = timeout })
  if opts.send then
    conn:send(opts.send .. "\r\n")
  end
  if opts.expect then
    local line = conn:read_line()
    conn:close()
    if line == nil then
      return false, "closed before replying"
    end
    if not line:find(opts.expect) then
      return false, "reply " .. string.format("%q", line) .. " does not match " .. opts.expect
    end
    return true
  end
  conn:close()
  return true
end
