-- Logs out each session of a token file exactly once:
-- wrk -s logout.lua URL -- TOKEN_FILE THREADS HEADER_PREFIX
-- HEADER_PREFIX is e.g. "Authorization: Bearer " or "Cookie: accessToken=";
-- each line of TOKEN_FILE is appended to it. A thread stops when its share
-- of the tokens is used up.
local counter = 0
function setup(thread)
   thread:set("id", counter)
   counter = counter + 1
end

local mine, index, name, prefix

function init(args)
   local threads = tonumber(args[2])
   name, prefix = args[3]:match("^([^:]+):%s?(.*)$")
   mine = {}
   local n = 0
   for line in io.lines(args[1]) do
      if n % threads == id then mine[#mine + 1] = line end
      n = n + 1
   end
   index = 0
end

function request()
   index = index + 1
   if index > #mine then
      wrk.thread:stop()
      index = #mine
   end
   return wrk.format("POST", nil, { [name] = prefix .. mine[index] }, nil)
end

dofile(os.getenv("WRK_RESULT_LUA"))
