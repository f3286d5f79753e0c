-- wrk script: every request creates a new product (a single-row write
-- transaction behind the gateway). Each wrk thread numbers its own skus.
-- Needs ECOM_ADMIN_TOKEN in the environment (product writes are admin-only).
local threads = {}
local counter = 0

function setup(thread)
  thread:set("tid", #threads + 1)
  table.insert(threads, thread)
end

function init(args)
  prefix = string.format("W%d-%d-", os.time() % 100000, tid)
  token = os.getenv("ECOM_ADMIN_TOKEN")
end

function request()
  counter = counter + 1
  local body = string.format(
    '{"sku":"%s%d","name":"Bench item %d","category":"toys","price_cents":%d}',
    prefix, counter, counter, 100 + counter % 5000)
  return wrk.format("POST", "/v1/products",
    { ["Content-Type"] = "application/json", ["Authorization"] = "Bearer " .. token }, body)
end
