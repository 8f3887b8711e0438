-- webhook: POST the alert as JSON to a URL; any 2xx answer is success.
--
--   alert lua:webhook url=https://hooks.example.com/keepmon
--   upalert lua:webhook url=http://127.0.0.1:9000/alerts timeout=5
--
-- The body: {"kind":"failure","group":"web","service":"http",
--            "hosts":["www1","www2"],"summary":"www2","detail":"...","time":1700000000}

local timeout = tonumber(opts.timeout) or 10

function alert(event)
  local url = opts.url or error("webhook needs url=...")
  local response = http.request {
    method = "POST",
    url = url,
    headers = { ["content-type"] = "application/json" },
    body = json.encode {
      kind = event.kind,
      group = event.group,
      service = event.service,
      hosts = event.hosts,
      summary = event.summary,
      detail = event.detail,
      time = event.time,
    },
    timeout = timeout,
  }
  if response.status < 200 or response.status > 299 then
    return false, url .. " answered " .. response.status
  end
  return true
end
