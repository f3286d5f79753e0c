-- wrk script: GET one product with a user's access token (ECOM_BENCH_TOKEN),
-- so the gateway verifies the JWT and signs the identity on every request.
function init(args)
  token = os.getenv("ECOM_BENCH_TOKEN")
end

function request()
  return wrk.format("GET", "/v1/products/BOOK-001", { ["Authorization"] = "Bearer " .. token })
end
