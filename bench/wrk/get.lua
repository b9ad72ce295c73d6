-- GET the URL wrk was given (headers from -H).
package.path = package.path .. ";" .. debug.getinfo(1, "S").source:match("@(.*/)") .. "?.lua"
done = require("report").done
