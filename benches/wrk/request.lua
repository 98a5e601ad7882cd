-- One fixed request, repeated: wrk -s request.lua URL -- METHOD BODY [HEADER: VALUE]
-- Prints one machine-readable WRK_RESULT line when done (read by benches/compare.py).
local method, body, headers

function init(args)
   method = args[1] or "GET"
   body = args[2]
   if body == "" then body = nil end
   headers = {}
   if body then headers["Content-Type"] = "application/json" end
   if args[3] then
      local name, value = args[3]:match("^([^:]+):%s*(.*)$")
      headers[name] = value
   end
end

function request()
   return wrk.format(method, nil, headers, body)
end

dofile(os.getenv("WRK_RESULT_LUA"))
