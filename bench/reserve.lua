-- wrk script: every request is a new reservation of one unit, POST
-- /v1/reservations through the gateway, as admin (ECOM_ADMIN_TOKEN).
--   ECOM_BENCH_SKUS  1: always the hot sku ECOM_BENCH_HOT;
--                    N > 1: one of BENCH-00000 .. BENCH-(N-1), uniformly
--   ECOM_BENCH_RUN   a label that makes the reservation ids of this run
--                    unique (with the thread and a counter)
-- At the end it prints one line, "statuses: 201=A 409=B other=C", so the
-- script running wrk can hold the 201s against the stock.
local threads = {}

function setup(thread)
  thread:set("tid", #threads + 1)
  table.insert(threads, thread)
end

function init(args)
  token = os.getenv("ECOM_ADMIN_TOKEN")
  skus = tonumber(os.getenv("ECOM_BENCH_SKUS") or "1")
  hot = os.getenv("ECOM_BENCH_HOT") or "BENCH-HOT"
  prefix = string.format("%s-%d-", os.getenv("ECOM_BENCH_RUN") or "r", tid)
  math.randomseed(tid * 7919 + os.time())
  counter = 0
  created, short, other = 0, 0, 0
  first_other = ""
  headers = { ["Content-Type"] = "application/json", ["Authorization"] = "Bearer " .. token }
end

function request()
  counter = counter + 1
  local sku = hot
  if skus > 1 then
    sku = string.format("BENCH-%05d", math.random(0, skus - 1))
  end
  local body = string.format(
    '{"reservation_id":"%s%d","order_id":"o-%s%d","items":[{"sku":"%s","qty":1}],"ttl_s":3600}',
    prefix, counter, prefix, counter, sku)
  return wrk.format("POST", "/v1/reservations", headers, body)
end

function response(status, headers, body)
  if status == 201 then
    created = created + 1
  elseif status == 409 then
    short = short + 1
  else
    other = other + 1
    if other == 1 then
      first_other = status .. " " .. body
    end
  end
end

function done(summary, latency, requests)
  local c, s, o, first = 0, 0, 0, ""
  for _, t in ipairs(threads) do
    c = c + t:get("created")
    s = s + t:get("short")
    o = o + t:get("other")
    if first == "" then
      first = t:get("first_other")
    end
  end
  io.write(string.format("statuses: 201=%d 409=%d other=%d\n", c, s, o))
  if o > 0 then
    io.write("first other answer: " .. first .. "\n")
  end
end
