// The Redis broker's state changes, each one Lua script so it is atomic: a sequence number is
// taken (HINCRBY), the event is appended to the recipient's stream (XADD, with the sequence as its
// id) and announced on the recipient's channel (PUBLISH) in one step, so no reader can ever see a
// gap, a reordering or a number used twice, whichever instance it runs on.
//
// Keys, under a prefix P (one per deployment; tests use one per broker):
//   P room:<room>     HASH  peer id → session id
//   P order:<room>    ZSET  peer id by arrival (the order of `others`)
//   P arrivals        counter for that order
//   P token:<token>   STRING session id
//   P s:<sid>         HASH  room peer client joined token addr seq delivered first bytes roomq
//                           owner epoch orphan tokens refill
//   P mbox:<sid>      STREAM the session's held events, id "<sequence>-0", fields e (the encoded
//                           event) t (ms) r (1 for a room event)
//   P addr:<address>  live registrations from that address; P registrations, P rooms,
//                     P heldEvents, P heldBytes: server-wide counts (limits and stats())
//   P ch:<sid>        channel: "E<seq>:<ms>:<event>", "R<epoch>" (replaced), "X<reason>" (gone)
//   P expiries        ZSET  session id by the time it expires (sessions without a stream)
//   P instances       SET   instance ids; P inst:<id> its heartbeat (expires); P owned:<id> SET of
//                     the sessions whose stream it serves
//
// `seq` is the last sequence given out, `delivered` the last one handed to a stream, `first` the
// oldest still held: seq - delivered events wait, delivered - first + 1 are retained for a resume,
// and `bytes` is what they all take. `roomq` counts the waiting room events. See broker.ts for the
// budgets; a refusal returns {code, value…} and redis-broker.ts words it. Scripts build key names from the prefix, which ties
// the broker to one Redis server (not Cluster): fine for a signaling server's load.
import type { Redis } from "ioredis";

const LIB = `
local function num(v) return tonumber(v) or 0 end
local function post(P, sid, payload, now, room)
  local key = P .. 's:' .. sid
  local seq = redis.call('HINCRBY', key, 'seq', 1)
  redis.call('XADD', P .. 'mbox:' .. sid, seq .. '-0', 'e', payload, 't', now, 'r', room)
  redis.call('HINCRBY', key, 'bytes', #payload)
  if room == 1 then redis.call('HINCRBY', key, 'roomq', 1) end
  redis.call('INCRBY', P .. 'heldBytes', #payload)
  redis.call('INCR', P .. 'heldEvents')
  redis.call('PUBLISH', P .. 'ch:' .. sid, 'E' .. seq .. ':' .. now .. ':' .. payload)
  return seq
end
-- Drops held events before sequence upto (only ones already handed out: retained ones).
local function drop(P, sid, upto)
  local key = P .. 's:' .. sid
  local rec = redis.call('HMGET', key, 'first', 'delivered')
  local first, delivered = num(rec[1]), num(rec[2])
  upto = math.min(upto, delivered + 1)
  if upto <= first then return end
  local bytes = 0
  for _, entry in ipairs(redis.call('XRANGE', P .. 'mbox:' .. sid, first .. '-0', (upto - 1) .. '-0')) do
    bytes = bytes + #entry[2][2]
  end
  redis.call('XTRIM', P .. 'mbox:' .. sid, 'MINID', upto .. '-0')
  redis.call('HSET', key, 'first', upto)
  redis.call('HINCRBY', key, 'bytes', 0 - bytes)
  redis.call('DECRBY', P .. 'heldBytes', bytes)
  redis.call('DECRBY', P .. 'heldEvents', upto - first)
end
-- Makes room for one more event of size bytes by dropping retained ones, oldest first; returns
-- the limit that still stands in the way, or nil.
local function room_for(P, sid, size, maxEvents, maxBytes, totalBytes)
  local key = P .. 's:' .. sid
  local rec = redis.call('HMGET', key, 'seq', 'delivered', 'first', 'bytes')
  local seq, delivered, first, bytes = num(rec[1]), num(rec[2]), num(rec[3]), num(rec[4])
  local total = num(redis.call('GET', P .. 'heldBytes'))
  local upto = first
  if seq - first + 1 >= maxEvents or bytes + size > maxBytes or total + size > totalBytes then
    for _, entry in ipairs(redis.call('XRANGE', P .. 'mbox:' .. sid, first .. '-0', delivered .. '-0')) do
      if seq - upto + 1 < maxEvents and bytes + size <= maxBytes and total + size <= totalBytes then break end
      bytes = bytes - #entry[2][2]
      total = total - #entry[2][2]
      upto = upto + 1
    end
    drop(P, sid, upto)
  end
  if seq - upto + 1 >= maxEvents then return {'peerEvents', seq - delivered, bytes} end
  if bytes + size > maxBytes then return {'peerBytes', seq - delivered, bytes} end
  if total + size > totalBytes then return {'totalBytes', total} end
  return nil
end
-- Events after \`from\` up to \`to\` were handed to a stream: they no longer wait.
local function handed(P, sid, from, to)
  local rooms = 0
  for _, entry in ipairs(redis.call('XRANGE', P .. 'mbox:' .. sid, (from + 1) .. '-0', to .. '-0')) do
    if entry[2][6] == '1' then rooms = rooms + 1 end
  end
  -- (never HINCRBY by -rooms when rooms is 0: Lua sends -0, which Redis refuses)
  if rooms > 0 then redis.call('HINCRBY', P .. 's:' .. sid, 'roomq', 0 - rooms) end
  redis.call('HSET', P .. 's:' .. sid, 'delivered', to)
end
local function others(P, room, self)
  local out = {}
  for _, peer in ipairs(redis.call('ZRANGE', P .. 'order:' .. room, 0, -1)) do
    if peer ~= self then
      local sid = redis.call('HGET', P .. 'room:' .. room, peer)
      local rec = redis.call('HMGET', P .. 's:' .. sid, 'client', 'joined', 'roomq')
      out[#out + 1] = {sid, peer, rec[1], rec[2], num(rec[3])}
    end
  end
  return out
end
-- Removes a session and tells its room; returns the peer id, or nil if it was gone already.
local function remove(P, sid, reason, payload, now)
  local key = P .. 's:' .. sid
  local rec = redis.call('HMGET', key, 'room', 'peer', 'token', 'owner', 'addr', 'seq', 'first', 'bytes')
  if not rec[1] then return nil end
  local room, peer = rec[1], rec[2]
  redis.call('HDEL', P .. 'room:' .. room, peer)
  redis.call('ZREM', P .. 'order:' .. room, peer)
  if redis.call('EXISTS', P .. 'order:' .. room) == 0 then redis.call('DECR', P .. 'rooms') end
  redis.call('DEL', P .. 'token:' .. rec[3], key, P .. 'mbox:' .. sid)
  redis.call('ZREM', P .. 'expiries', sid)
  if rec[4] ~= '' then redis.call('SREM', P .. 'owned:' .. rec[4], sid) end
  if redis.call('DECR', P .. 'addr:' .. rec[5]) <= 0 then redis.call('DEL', P .. 'addr:' .. rec[5]) end
  redis.call('DECR', P .. 'registrations')
  redis.call('DECRBY', P .. 'heldEvents', math.max(0, num(rec[6]) - num(rec[7]) + 1))
  redis.call('DECRBY', P .. 'heldBytes', num(rec[8]))
  redis.call('PUBLISH', P .. 'ch:' .. sid, 'X' .. reason)
  for _, other in ipairs(others(P, room, peer)) do post(P, other[1], payload, now, 1) end
  return peer
end
`;

/**
 * ARGV: P room peer sid token client joined deadline payload now address peersPerRoom
 * perAddress registrations roomEvents peerEvents peerBytes totalBytes → {"OK", others} | {"TAKEN"}
 * | {limit, details…}
 */
const REGISTER = `${LIB}
local P, room, peer, sid, token, client, joined, deadline, payload, now, address,
  peersPerRoom, perAddress, registrations, roomEvents, peerEvents, peerBytes, totalBytes = unpack(ARGV)
if redis.call('HEXISTS', P .. 'room:' .. room, peer) == 1 then return {'TAKEN'} end
local list = others(P, room, peer)
if #list >= num(peersPerRoom) then return {'peersPerRoom'} end
if num(redis.call('GET', P .. 'addr:' .. address)) >= num(perAddress) then return {'registrationsPerAddress'} end
if num(redis.call('GET', P .. 'registrations')) >= num(registrations) then return {'registrations'} end
for _, other in ipairs(list) do
  if other[5] >= num(roomEvents) then return {'roomEvents'} end
  local full = room_for(P, other[1], #payload, num(peerEvents), num(peerBytes), num(totalBytes))
  if full then return full end
end
if #list == 0 then redis.call('INCR', P .. 'rooms') end
redis.call('HSET', P .. 'room:' .. room, peer, sid)
redis.call('ZADD', P .. 'order:' .. room, redis.call('INCR', P .. 'arrivals'), peer)
redis.call('HSET', P .. 's:' .. sid, 'room', room, 'peer', peer, 'client', client, 'joined', joined,
  'token', token, 'addr', address, 'seq', 0, 'delivered', 0, 'first', 1, 'bytes', 0, 'roomq', 0,
  'owner', '', 'epoch', 0, 'orphan', '', 'tokens', -1, 'refill', now)
redis.call('INCR', P .. 'addr:' .. address)
redis.call('INCR', P .. 'registrations')
redis.call('SET', P .. 'token:' .. token, sid)
redis.call('ZADD', P .. 'expiries', deadline, sid)
for _, other in ipairs(list) do post(P, other[1], payload, now, 1) end
return {'OK', list}
`;

/** ARGV: P token → {sid room peer client joined} | nil */
const AUTHENTICATE = `
local P, token = unpack(ARGV)
local sid = redis.call('GET', P .. 'token:' .. token)
if not sid then return nil end
local rec = redis.call('HMGET', P .. 's:' .. sid, 'room', 'peer', 'client', 'joined')
if not rec[1] then return nil end
return {sid, rec[1], rec[2], rec[3], rec[4]}
`;

/**
 * ARGV: P fromSid room toPeer payload now peerEvents peerBytes totalBytes sendRate sendBurst
 * → {"OK", sequence} | {"UNAUTH"} | {"NOTFOUND"} | {limit, details…}
 */
const SEND = `${LIB}
local P, from, room, to, payload, now, peerEvents, peerBytes, totalBytes, rate, burst = unpack(ARGV)
local fromKey = P .. 's:' .. from
local bucket = redis.call('HMGET', fromKey, 'tokens', 'refill')
if not bucket[2] then return {'UNAUTH'} end
local sid = redis.call('HGET', P .. 'room:' .. room, to)
if not sid then return {'NOTFOUND'} end
-- A token bucket: sendBurst at once, then sendRate per second.
local tokens = num(bucket[1])
if tokens < 0 then tokens = num(burst) end
tokens = math.min(num(burst), tokens + (num(now) - num(bucket[2])) * num(rate) / 1000)
if tokens < 1 then return {'sendRate'} end
local full = room_for(P, sid, #payload, num(peerEvents), num(peerBytes), num(totalBytes))
if full then return full end
redis.call('HSET', fromKey, 'tokens', tostring(tokens - 1), 'refill', now)
return {'OK', post(P, sid, payload, now, 0)}
`;

/**
 * ARGV: P sid instance resumeAfter ("" for none) → nil | {"OK", epoch, start, others} |
 * {"RANGE", first, seq}. Takes the session's stream for this instance: the epoch names this
 * subscription, and "R<epoch>" tells an older one, wherever it runs, that it was replaced.
 */
const SUBSCRIBE = `${LIB}
local P, sid, inst, resume = unpack(ARGV)
local key = P .. 's:' .. sid
local rec = redis.call('HMGET', key, 'room', 'peer', 'owner', 'delivered', 'seq', 'first')
if not rec[1] then return nil end
local delivered, seq, first = num(rec[4]), num(rec[5]), num(rec[6])
local start = delivered + 1
if resume ~= '' then
  local after = num(resume)
  if after > seq or (after + 1 < first and after < seq) then return {'RANGE', first, seq} end
  if after > delivered then handed(P, sid, delivered, after) end
  drop(P, sid, after + 1)
  start = after + 1
end
local epoch = redis.call('HINCRBY', key, 'epoch', 1)
if rec[3] ~= '' then redis.call('SREM', P .. 'owned:' .. rec[3], sid) end
redis.call('HSET', key, 'owner', inst, 'orphan', '')
redis.call('SADD', P .. 'owned:' .. inst, sid)
redis.call('ZREM', P .. 'expiries', sid)
redis.call('PUBLISH', P .. 'ch:' .. sid, 'R' .. epoch)
return {'OK', epoch, start, others(P, rec[1], rec[2])}
`;

/** ARGV: P sid instance epoch deadline: the stream went away; the grace period starts. */
const RELEASE = `
local P, sid, inst, epoch, deadline = unpack(ARGV)
local key = P .. 's:' .. sid
local rec = redis.call('HMGET', key, 'owner', 'epoch')
if rec[1] ~= inst or rec[2] ~= epoch then return 0 end
redis.call('HSET', key, 'owner', '')
redis.call('SREM', P .. 'owned:' .. inst, sid)
redis.call('ZADD', P .. 'expiries', deadline, sid)
return 1
`;

/**
 * ARGV: P sid epoch seq retain: events up to seq were handed to the stream of that epoch. The
 * last `retain` of them stay for a resume.
 */
const ACK = `${LIB}
local P, sid, epoch, seq, retain = unpack(ARGV)
local key = P .. 's:' .. sid
local rec = redis.call('HMGET', key, 'epoch', 'delivered')
local delivered = num(rec[2])
if rec[1] ~= epoch or delivered >= num(seq) then return 0 end
handed(P, sid, delivered, num(seq))
drop(P, sid, num(seq) - num(retain) + 1)
return 1
`;

/**
 * ARGV: P sid reason payload now dueBy → 1 if removed. dueBy > 0 removes only a session that is
 * still due to expire by then (it may have subscribed again meanwhile, on any instance).
 */
const LEAVE = `${LIB}
local P, sid, reason, payload, now, dueBy = unpack(ARGV)
if num(dueBy) > 0 then
  local score = redis.call('ZSCORE', P .. 'expiries', sid)
  if not score or num(score) > num(dueBy) then return 0 end
end
if remove(P, sid, reason, payload, now) then return 1 end
return 0
`;

/** ARGV: P now limit → {{sid, room, peer, client, joined, orphan}…}: sessions whose grace is over. */
const DUE = `
local P, now, limit = unpack(ARGV)
local out = {}
for _, sid in ipairs(redis.call('ZRANGEBYSCORE', P .. 'expiries', '-inf', now, 'LIMIT', 0, limit)) do
  local rec = redis.call('HMGET', P .. 's:' .. sid, 'room', 'peer', 'client', 'joined', 'orphan')
  if rec[1] then out[#out + 1] = {sid, rec[1], rec[2], rec[3], rec[4], rec[5]}
  else redis.call('ZREM', P .. 'expiries', sid) end
end
return out
`;

/** ARGV: P → {rooms, peers, heldEvents, heldBytes} */
const STATS = `
local P = ARGV[1]
local v = redis.call('MGET', P .. 'rooms', P .. 'registrations', P .. 'heldEvents', P .. 'heldBytes')
return {tonumber(v[1]) or 0, tonumber(v[2]) or 0, tonumber(v[3]) or 0, tonumber(v[4]) or 0}
`;

/**
 * ARGV: P instance ttl → 1 while alive, 0 when the heartbeat had lapsed (a new instance, or one
 * that lost Redis for longer than ttl and may have had its sessions orphaned).
 */
const HEARTBEAT = `
local P, inst, ttl = unpack(ARGV)
if redis.call('SET', P .. 'inst:' .. inst, '1', 'PX', ttl, 'XX') then return 1 end
redis.call('SET', P .. 'inst:' .. inst, '1', 'PX', ttl)
redis.call('SADD', P .. 'instances', inst)
return 0
`;

/** Hands the sessions of `inst` to the expiry clock, marked as left by shutdown if not claimed. */
const ORPHAN = `
local function orphan(P, inst, deadline)
  for _, sid in ipairs(redis.call('SMEMBERS', P .. 'owned:' .. inst)) do
    local key = P .. 's:' .. sid
    if redis.call('HGET', key, 'owner') == inst then
      redis.call('HSET', key, 'owner', '', 'orphan', 'shutdown')
      redis.call('ZADD', P .. 'expiries', deadline, sid)
    end
  end
  redis.call('DEL', P .. 'owned:' .. inst, P .. 'inst:' .. inst)
  redis.call('SREM', P .. 'instances', inst)
end
`;

/** ARGV: P deadline → ids of instances whose heartbeat lapsed; their sessions start their grace. */
const REAP = `${ORPHAN}
local P, deadline = unpack(ARGV)
local dead = {}
for _, inst in ipairs(redis.call('SMEMBERS', P .. 'instances')) do
  if redis.call('EXISTS', P .. 'inst:' .. inst) == 0 then
    orphan(P, inst, deadline)
    dead[#dead + 1] = inst
  end
end
return dead
`;

/**
 * ARGV: P instance deadline [sid epoch]…: this instance stops; its peers may resume elsewhere
 * within the grace. The sessions listed, whose streams it just ended, count as its own if no
 * stream took them since.
 */
const RETIRE = `${ORPHAN}
local P, inst, deadline = ARGV[1], ARGV[2], ARGV[3]
for i = 4, #ARGV, 2 do
  local key = P .. 's:' .. ARGV[i]
  local rec = redis.call('HMGET', key, 'owner', 'epoch')
  if rec[1] == '' and rec[2] == ARGV[i + 1] then redis.call('HSET', key, 'orphan', 'shutdown') end
end
orphan(P, inst, deadline)
return 1
`;

/** ARGV: P sid instance epoch: re-takes a stream this instance still serves after its heartbeat lapsed. */
const CLAIM = `
local P, sid, inst, epoch = unpack(ARGV)
local key = P .. 's:' .. sid
if redis.call('HGET', key, 'epoch') ~= epoch then return 0 end
redis.call('HSET', key, 'owner', inst, 'orphan', '')
redis.call('SADD', P .. 'owned:' .. inst, sid)
redis.call('ZREM', P .. 'expiries', sid)
return 1
`;

const SCRIPTS = {
  icRegister: REGISTER,
  icAuthenticate: AUTHENTICATE,
  icSend: SEND,
  icSubscribe: SUBSCRIBE,
  icRelease: RELEASE,
  icAck: ACK,
  icLeave: LEAVE,
  icDue: DUE,
  icStats: STATS,
  icHeartbeat: HEARTBEAT,
  icReap: REAP,
  icRetire: RETIRE,
  icClaim: CLAIM,
} as const;

export type ScriptName = keyof typeof SCRIPTS;
type Arg = string | number | Buffer;

/** A Redis connection with the broker's scripts (sent once, then called by their SHA). */
export type ScriptedRedis = Redis & { [name in ScriptName]: (...args: Arg[]) => Promise<unknown> };

export function defineScripts(redis: Redis): ScriptedRedis {
  for (const [name, lua] of Object.entries(SCRIPTS)) redis.defineCommand(name, { numberOfKeys: 0, lua });
  return redis as ScriptedRedis;
}
