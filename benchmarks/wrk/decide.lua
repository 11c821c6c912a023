-- wrk script: POSTs the decide bodies of a file, one per line, in turn
-- (each thread starting at its own offset). Make the file with
--   touchpoint loadtest bodies --customers 3000 --count 20000 > bodies.jsonl
-- and run
--   wrk -s benchmarks/wrk/decide.lua -c 64 -t 1 -d 10s http://HOST:PORT/v1/decide -- bodies.jsonl
-- Requests are formatted once in init, so the script costs wrk next to
-- nothing per request. Any answer but 200 is counted and reported.

local requests = {}
local next_request = 1
local thread_count = 0
local threads = {}

function setup(thread)
  thread:set("id", thread_count)
  thread_count = thread_count + 1
  table.insert(threads, thread)
end

function init(args)
  local path = args[1]
  if path == nil then
    error("give the bodies file after --, e.g. wrk ... URL -- bodies.jsonl")
  end
  local file = assert(io.open(path, "r"))
  local headers = {["Content-Type"] = "application/json"}
  for line in file:lines() do
    if #line > 0 then
      requests[#requests + 1] = wrk.format("POST", nil, headers, line)
    end
  end
  file:close()
  if #requests == 0 then
    error("no bodies in " .. path)
  end
  next_request = (id * 7919) % #requests + 1
  not_ok = 0
end

function request()
  local r = requests[next_request]
  next_request = next_request % #requests + 1
  return r
end

function response(status, headers, body)
  if status ~= 200 then
    not_ok = not_ok + 1
  end
end

function done(summary, latency, requests)
  local bad = 0
  for _, thread in ipairs(threads) do
    bad = bad + thread:get("not_ok")
  end
  io.write(string.format("non-200 answers: %d\n", bad))
end
