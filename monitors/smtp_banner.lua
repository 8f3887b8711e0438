-- smtp_banner: each host must greet with 220 and answer EHLO with 250.
--
--   monitor lua:smtp_banner                        (port 25)
--   monitor lua:smtp_banner port=587 ehlo=mon.example.com timeout=10

local port = tonumber(opts.port) or 25
local ehlo = opts.ehlo or "keepmon.localdomain"
local timeout = tonumber(opts.timeout) or 10

-- One SMTP reply, which may span lines ("250-..." continues, "250 ..." ends).
-- Returns the code and the text of all lines.
local function reply(conn)
  local lines = {}
  repeat
    local line = conn:read_line()
    if line == nil then
      error("connection closed after " .. #lines .. " reply lines")
    end
    lines[#lines + 1] = line
  until line:sub(4, 4) ~= "-"
  return tonumber(lines[#lines]:sub(1, 3)), table.concat(lines, " | ")
end

function check(host)
  local conn = tcp.connect(host, port, { timeout = timeout })
  local code, text = reply(conn)
  if code ~= 220 then
    conn:close()
    return false, "greeting: " .. text
  end
  conn:send("EHLO " .. ehlo .. "\r\n")
  code, text = reply(conn)
  conn:send("QUIT\r\n")
  conn:close()
  if code ~= 250 then
    return false, "EHLO: " .. text
  end
  return true
end
