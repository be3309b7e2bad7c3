-- wrk script: POST the hook request of BENCH_BODY_FILE with a fresh hookInstance on every request, so that the
-- service does the whole pipeline each time instead of answering from its idempotency record.
local counter = 0
local thread_id = 0
local template

function init(args)
  local file = assert(io.open(os.getenv("BENCH_BODY_FILE"), "rb"))
  template = file:read("*a")
  file:close()
  thread_id = math.random(1, 1000000000)
end

request = function()
  counter = counter + 1
  local body = template:gsub("__HOOK_INSTANCE__", string.format("bench-%d-%d", thread_id, counter), 1)
  return wrk.format("POST", nil, {["Content-Type"] = "application/json"}, body)
end
