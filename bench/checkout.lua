-- wrk script: every request is a new checkout, POST /v1/orders through the
-- gateway with a new Idempotency-Key, one unit of a random catalog sku as
-- an explicit item, paid with tok_visa.
--   ECOM_BENCH_TOKENS  users' access tokens, comma-separated (used in turn)
--   ECOM_BENCH_SKUS    skus, comma-separated
--   ECOM_BENCH_RUN     a label that makes the keys of this run unique
-- At the end it prints "statuses: 201=A 202=B other=C" (and the first other
-- answer), so the calling script can hold them against the platform's counts.
local threads = {}

function setup(thread)
  thread:set("tid", #threads + 1)
  table.insert(threads, thread)
end

local function split(s)
  local t = {}
  for v in string.gmatch(s or "", "[^,]+") do table.insert(t, v) end
  return t
end

function init(args)
  tokens = split(os.getenv("ECOM_BENCH_TOKENS"))
  skus = split(os.getenv("ECOM_BENCH_SKUS"))
  prefix = string.format("%s-%d-", os.getenv("ECOM_BENCH_RUN") or "r", tid)
  math.randomseed(tid * 7919 + os.time())
  counter = 0
  created, queued, other = 0, 0, 0
  first_other = ""
end

function request()
  counter = counter + 1
  local token = tokens[(counter + tid) % #tokens + 1]
  local sku = skus[math.random(1, #skus)]
  local headers = {
    ["Content-Type"] = "application/json",
    ["Authorization"] = "Bearer " .. token,
    ["Idempotency-Key"] = prefix .. counter,
  }
  local body = string.format(
    '{"items":[{"sku":"%s","qty":1}],"payment":{"method":"card","token":"tok_visa"}}', sku)
  return wrk.format("POST", "/v1/orders", headers, body)
end

function response(status, headers, body)
  if status == 201 then
    created = created + 1
  elseif status == 202 then
    queued = queued + 1
  else
    other = other + 1
    if other == 1 then first_other = status .. " " .. string.sub(body, 1, 200) end
  end
end

function done(summary, latency, requests)
  local c, q, o, first = 0, 0, 0, ""
  for _, t in ipairs(threads) do
    c = c + t:get("created")
    q = q + t:get("queued")
    o = o + t:get("other")
    if first == "" then first = t:get("first_other") end
  end
  io.write(string.format("statuses: 201=%d 202=%d other=%d\n", c, q, o))
  if o > 0 then io.write("first other answer: " .. first .. "\n") end
end
