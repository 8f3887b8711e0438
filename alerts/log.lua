-- log: append one line per alert to a file.
--
--   alert lua:log file=/var/log/keepmon/alerts.log
--
-- The file must be beneath [lua] files_dir (default: logdir).
-- The line: TIME KIND GROUP/SERVICE HOSTS: SUMMARY

function alert(event)
  local path = opts.file or error("log needs file=/path")
  local line = string.format("%d %s %s/%s %s: %s\n", event.time, event.kind, event.group,
    event.service, table.concat(event.hosts, ","), event.summary)
  file.append(path, line)
end
