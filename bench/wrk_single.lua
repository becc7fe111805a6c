-- One event per POST /event, each a different visitor and path.
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
local counter = 0
local thread_id = 0
function setup(thread)
  thread:set("tid", thread_id)
  thread_id = thread_id + 1
end
function request()
  counter = counter + 1
  local body = string.format(
    '{"site_id":"bench","event_type":"page_view","path":"/p/%d","user_id":"w%d-%d",' ..
    '"referrer":"https://www.google.com/"}', counter % 97, tid or 0, counter % 5000)
  return wrk.format(nil, "/event", nil, body)
end
