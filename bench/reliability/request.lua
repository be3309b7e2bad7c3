-- wrk script: POST the hook request of BENCH_BODY_FILE with a fresh hookInstance and a fresh patient (MRN) on every
-- request, the same shape as the open-loop runs of bench/reliability.
local counter = 0
local thread_id = 0
local template

function init(args)
  local file = assert(io.open(os.getenv("BENCH_BODY_FILE"), "rb"))
  template = file:read("*a")
  file:close()
  -- Seeded: unseeded, every wrk run draws the same id, and a second run would replay the first run's hookInstances
  -- (answered from the store, not worked), inflating its rate.
  math.randomseed(os.time())
  thread_id = math.random(1, 1000000000)
end

request = function()
  counter = counter + 1
  local id = string.format("rel-%d-%d", thread_id, counter)
  local body = template:gsub("__HOOK_INSTANCE__", id, 1):gsub("__MRN__", id, 1)
  return wrk.format("POST", nil, {["Content-Type"] = "application/json"}, body)
end
