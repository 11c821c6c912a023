package redisstore

import "github.com/redis/go-redis/v9"

// The Lua scripts every write runs. Each touches only the keys it is given,
// all in one hash slot, and publishes the invalidation itself, so a write and
// its announcement are one atomic step and one round trip.
//
// Lua's unpack is limited to a few thousand values, so long argument lists
// are applied in chunks.

// featuresScript: KEYS[1] features hash. ARGV: channel, customer id, number
// of names to delete, those names, then name/value pairs to set.
const featuresLua = `
local key = KEYS[1]
local i = 4
local stop = 3 + tonumber(ARGV[3])
while i <= stop do
  local j = math.min(i + 999, stop)
  redis.call('HDEL', key, unpack(ARGV, i, j))
  i = j + 1
end
while i <= #ARGV do
  local j = math.min(i + 999, #ARGV)
  redis.call('HSET', key, unpack(ARGV, i, j))
  i = j + 1
end
redis.call('PUBLISH', ARGV[1], ARGV[2])
return 1
`

// consentScript: KEYS[1] consent hash. ARGV: channel, customer id, then
// triples of consent channel, "1" or "0", unix seconds. An answer older than
// the stored one for the same channel is ignored.
const consentLua = `
local key = KEYS[1]
for i = 3, #ARGV, 3 do
  local at = tonumber(ARGV[i + 2])
  local cur = redis.call('HGET', key, ARGV[i])
  local newer = true
  if cur then
    local old = tonumber(string.match(cur, '|(%-?%d+)$'))
    if old and old > at then newer = false end
  end
  if newer then redis.call('HSET', key, ARGV[i], ARGV[i + 1] .. '|' .. ARGV[i + 2]) end
end
redis.call('PUBLISH', ARGV[1], ARGV[2])
return 1
`

// eraseScript: KEYS the customer's keys to delete. ARGV: channel, customer id.
const eraseLua = `
redis.call('DEL', unpack(KEYS))
redis.call('PUBLISH', ARGV[1], ARGV[2])
return 1
`

// countScript counts events and decisions and applies the feature updates
// of new events. KEYS[1] counters hash, KEYS[2] prune-day key, KEYS[3]
// features hash, KEYS[4..] idempotency markers. ARGV: channel, customer id,
// marker TTL in seconds, cutoff day, today, then one group per event:
// marker index into KEYS (0: no marker, always counted), day, number of
// fields, the counter fields, number of updates, the updates. An update is
// "s", feature, JSON value (set), or "a", feature, delta, base (add; delta
// and base are decimal numbers). A group whose marker already exists is
// neither counted nor updates anything. Returns one character per group,
// "1" for a new group and "0" for one seen before, so the caller knows
// which events to tally. Counters older than the cutoff are not
// incremented, and the first counting write of a day deletes them; updates
// apply whatever the event's day, since they change the customer now.
//
// An add reads the feature as a number only when it holds a JSON number
// (what decodeValue would read as one); anything else, or nothing, counts
// as base, so an add repairs a feature of the wrong type rather than
// failing the customer's whole batch half applied. The sum is written with
// the fewest digits that read back as the same double. A sum that is not
// finite leaves the feature as it was: JSON has no number for it.
const countLua = `
local function jsonnum(s)
  if type(s) ~= 'string' then return nil end
  local int, frac, exp = string.match(s, '^%-?(%d+)(%.?%d*)([eE]?[-+]?%d*)$')
  if not int then return nil end
  if #int > 1 and string.sub(int, 1, 1) == '0' then return nil end
  if frac == '.' then return nil end
  if exp ~= '' and not string.match(exp, '^[eE][-+]?%d+$') then return nil end
  return tonumber(s)
end
local function finite(x)
  return x == x and x ~= math.huge and x ~= -math.huge
end
local function shortest(x)
  for _, p in ipairs({'%.15g', '%.16g'}) do
    local s = string.format(p, x)
    if tonumber(s) == x then return s end
  end
  return string.format('%.17g', x)
end
local n = KEYS[1]
local feats = KEYS[3]
local ttl = ARGV[3]
local cutoff = tonumber(ARGV[4])
local applied = 0
local flags = {}
local i = 6
while i <= #ARGV do
  local m = tonumber(ARGV[i])
  local day = tonumber(ARGV[i + 1])
  local cnt = tonumber(ARGV[i + 2])
  local new = true
  if m > 0 then new = redis.call('SET', KEYS[m], '1', 'NX', 'EX', ttl) end
  flags[#flags + 1] = new and '1' or '0'
  if new then
    applied = applied + 1
    if day >= cutoff then
      for j = i + 3, i + 2 + cnt do redis.call('HINCRBY', n, ARGV[j], 1) end
    end
  end
  i = i + 3 + cnt
  local u = tonumber(ARGV[i])
  i = i + 1
  for _ = 1, u do
    if ARGV[i] == 's' then
      if new then redis.call('HSET', feats, ARGV[i + 1], ARGV[i + 2]) end
      i = i + 3
    else
      if new then
        local cur = jsonnum(redis.call('HGET', feats, ARGV[i + 1]))
        if not (cur and finite(cur)) then cur = tonumber(ARGV[i + 3]) end
        local x = cur + tonumber(ARGV[i + 2])
        if finite(x) then redis.call('HSET', feats, ARGV[i + 1], shortest(x)) end
      end
      i = i + 4
    end
  end
end
if applied > 0 then
  local today = ARGV[5]
  if redis.call('GET', KEYS[2]) ~= today then
    for _, f in ipairs(redis.call('HKEYS', n)) do
      local d = tonumber(string.match(f, '|(%-?%d+)$'))
      if d and d < cutoff then redis.call('HDEL', n, f) end
    end
    redis.call('SET', KEYS[2], today, 'EX', 172800)
  end
  redis.call('PUBLISH', ARGV[1], ARGV[2])
end
return table.concat(flags)
`

// consumeScript: KEYS[1] units consumed ever, KEYS[2] units consumed today.
// ARGV: total limit, per-day limit (0: none), unix time the day key expires.
// Returns 1 and counts one unit when both limits allow it, else 0.
const consumeLua = `
local total = tonumber(ARGV[1])
local perDay = tonumber(ARGV[2])
if total > 0 and tonumber(redis.call('GET', KEYS[1]) or '0') >= total then return 0 end
if perDay > 0 and tonumber(redis.call('GET', KEYS[2]) or '0') >= perDay then return 0 end
redis.call('INCR', KEYS[1])
redis.call('INCR', KEYS[2])
redis.call('EXPIREAT', KEYS[2], ARGV[3])
return 1
`

// scripts holds the compiled scripts of one Store.
type scripts struct {
	features, consent, erase, count, consume, reserve *redis.Script
}

func newScripts() scripts {
	return scripts{
		features: redis.NewScript(featuresLua),
		consent:  redis.NewScript(consentLua),
		erase:    redis.NewScript(eraseLua),
		count:    redis.NewScript(countLua),
		consume:  redis.NewScript(consumeLua),
		reserve:  redis.NewScript(reserveLua),
	}
}

// reserveLua checks decision caps and counts the decision in one step, so
// concurrent decisions on many nodes never pass a cap. KEYS[1] is the
// counters hash; ARGV: channel, customer id, today, then subject, days,
// limit for each cap.
const reserveLua = `
local n = KEYS[1]
local today = tonumber(ARGV[3])
local i = 4
while i <= #ARGV do
  local subject, days, limit = ARGV[i], tonumber(ARGV[i + 1]), tonumber(ARGV[i + 2])
  local sum = 0
  for d = today - days + 1, today do
    local v = redis.call('HGET', n, 'decision|' .. subject .. '|' .. d)
    if v then sum = sum + tonumber(v) end
  end
  if sum >= limit then return 0 end
  i = i + 3
end
i = 4
while i <= #ARGV do
  redis.call('HINCRBY', n, 'decision|' .. ARGV[i] .. '|' .. today, 1)
  i = i + 3
end
redis.call('PUBLISH', ARGV[1], ARGV[2])
return 1
`
