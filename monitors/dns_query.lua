-- dns_query: each host is a name that must resolve (through the system
-- resolver: /etc/hosts, then the nameservers in /etc/resolv.conf).
--
--   hostgroup names www.example.com mail.example.com
--   monitor lua:dns_query                          (any address will do)
--   monitor lua:dns_query expect=192.0.2.10        (this address must be among the answers)

local timeout = tonumber(opts.timeout) or 5

function check(name)
  local addresses = dns.resolve(name, { timeout = timeout })
  if #addresses == 0 then
    return false, "no addresses"
  end
  if opts.expect then
    for _, address in ipairs(addresses) do
      if address == opts.expect then
        return true
      end
    end
    return false, "got " .. table.concat(addresses, " ") .. ", expected " .. opts.expect
  end
  return true
end
