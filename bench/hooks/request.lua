-- wrk script: POST the hook request of BENCH_BODY_FILE with a fresh hookInstance on every request, so that the
-- service does the whole pipeline each time instead of answering from its idempotency record, and for one of
-- BENCH_PATIENTS patients in turn (the body's __PATIENT__ placeholders), as an EHR's calls are.
local counter = 0
local thread_id = 0
local run_id = os.getenv("BENCH_RUN_ID") or tostring(os.time())
local patients = tonumber(os.getenv("BENCH_PATIENTS") or "1")
local bodies = {}

function init(args)
  local file = assert(io.open(os.getenv("BENCH_BODY_FILE"), "rb"))
  local template = file:read("*a")
  file:close()
  -- One body per patient, made once: the load generator's own work per request stays one substitution.
  for p = 1, patients do
    bodies[p] = template:gsub("__PATIENT__", string.format("bench-%d", p))
  end
  -- wrk's Lua generator is never seeded: without the run id every run would send the same "random" ids.
  thread_id = math.random(1, 1000000000)
end

request = function()
  counter = counter + 1
  local body = bodies[(counter % patients) + 1]
  body = body:gsub("__HOOK_INSTANCE__", string.format("bench-%s-%d-%d", run_id, thread_id, counter), 1)
  return wrk.format("POST", nil, {["Content-Type"] = "application/json"}, body)
end
