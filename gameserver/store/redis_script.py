"""The Redis backend's one server-side script: check what transactions read, apply what they
wrote, atomically, in one round trip for any number of them.

``ARGV[1]`` is a JSON list of transactions, applied in order; ``ARGV[2]`` the key of the
counter every version comes from. A transaction is ``{"r": reads, "w": writes}``, plus
``"m"`` when it was staged in a batch (see below).

Each read is ``[key, kind, version, want]``: ``kind`` ``d`` a document, ``c`` a counter (its
value is its version), ``z`` a set (``want``: how many of its smallest members the worker
needs, -1 all). Version 0 means absent; -1 never matches (the worker knows too little of a
set). A transaction whose reads are all current has its writes applied and is answered
``{"ok": true, "v": [[key, version, known?], ...], "fresh": [...]}`` (``fresh``: the
content of each set it wrote whose version the worker did not know, as in ``stale``);
otherwise nothing of it is written and
it is answered ``{"ok": false, "stale": [...]}`` with the current content of what changed:
``[key, version]`` for a counter, ``[key, version, json or false]`` for a document,
``[key, version, count, members, want]`` for a set.

A batch's worker runs each transaction on its copy with the writes of the batch's earlier
transactions already in it, before any of them is committed. Such a transaction carries a
marker ``m`` (a negative number below -1, never used twice by a worker), and what it writes
shows in the copy at version ``m``. A read at such a version is current if the transaction
that wrote it was applied earlier in this same call (and, for a set, if that transaction's
worker knew the set as it was): a transaction that read what a refused one wrote is refused
with it. Counters need no marker: their value is their version. A staged transaction also
names its part ``p`` (a job of the batch): once one transaction of a part is refused, the
part's later ones are refused too, since they ran on what the refused one returned or raised.

A staged transaction's event seqs are *reserved* (``Tx.reserve``): a ``bump`` write, first in
its list, names a counter and a placeholder (a negative number) the worker used in place of
the value. The script increments the counter, answers ``"s": [[placeholder, value], ...]``,
and writes each document and log entry of the transaction with ``"seq":<placeholder>``
replaced by its value (a log entry's score too). Nothing reads those counters, so two workers
numbering events on one topic no longer refuse each other.
"""

from __future__ import annotations

COMMIT_SCRIPT = """
local txs = cjson.decode(ARGV[1])
local version_key = ARGV[2]
-- key -> marker of the transaction of this call that last wrote it (false: a set written
-- by a worker whose copy was out of date, so nobody's copy of it is exact)
local wrote = {}
local function set_current(key, seen)
  if seen <= -2 then return wrote[key] == seen end
  return (tonumber(redis.call('GET', key .. ':v')) or 0) == seen
end
local failed_parts = {}  -- parts (req.p) with a refused transaction: the rest is refused too
local answers = {}
for t, req in ipairs(txs) do
  local stale = {}
  local refused = req.p ~= nil and failed_parts[req.p] == true
  for _, r in ipairs(req.r) do
    local key, kind, seen, want = r[1], r[2], r[3], r[4]
    if seen <= -2 then
      if wrote[key] ~= seen then refused = true end
    elseif kind == 'd' then
      -- The version alone: the document itself only if it changed (most reads are current).
      local n = tonumber(redis.call('HGET', key, 'n')) or 0
      if n ~= seen then stale[#stale + 1] = {key, n, redis.call('HGET', key, 'v') or false} end
    elseif kind == 'c' then
      local n = tonumber(redis.call('GET', key)) or 0
      if n ~= seen then stale[#stale + 1] = {key, n} end
    else
      local n = tonumber(redis.call('GET', key .. ':v')) or 0
      if n ~= seen then
        local members = redis.call('ZRANGE', key, 0, want)
        stale[#stale + 1] = {key, n, redis.call('ZCARD', key), members, want}
      end
    end
  end
  if refused or #stale > 0 then
    if req.p ~= nil then failed_parts[req.p] = true end
    answers[t] = {ok = false, stale = stale}
  else
    local m = req.m
    local versions = {}
    local assigned = {}  -- placeholder (as digits, without its sign) -> value
    local reserved = {}
    local function settle(json)
      if #reserved == 0 then return json end
      return (string.gsub(json, '"seq":%-(%d+)', function(digits)
        local value = assigned[digits]
        if value then return '"seq":' .. value end
      end))
    end
    local known = {}
    local resend = {}  -- sets written on an out-of-date copy: how much of each to send back
    for _, w in ipairs(req.w) do
      local op, key = w[1], w[2]
      if op == 'bump' then
        local value = redis.call('INCR', key)
        assigned[tostring(-w[3])] = value
        reserved[#reserved + 1] = {w[3], value}
      elseif op == 'put' then
        local n = redis.call('INCR', version_key)
        redis.call('HSET', key, 'n', n, 'v', settle(w[3]))
        if w[4] > 0 then redis.call('PEXPIRE', key, w[4]) else redis.call('PERSIST', key) end
        versions[#versions + 1] = {key, n}
        if m then wrote[key] = m end
      elseif op == 'del' then
        redis.call('DEL', key)
        if m then wrote[key] = m end
      elseif op == 'zadd' or op == 'zrem' then
        -- w[4]: the version the worker knew; it may keep its copy if that was current.
        if known[key] == nil then
          known[key] = set_current(key, w[4])
          if not known[key] then resend[key] = w[5] end
        end
        if op == 'zadd' then redis.call('ZADD', key, 0, w[3]) else redis.call('ZREM', key, w[3]) end
        local n = redis.call('INCR', version_key)
        redis.call('SET', key .. ':v', n)
        versions[#versions + 1] = {key, n, known[key]}
        if m then wrote[key] = known[key] and m end
      elseif op == 'set' then
        redis.call('SET', key, w[3])
      elseif op == 'log' then
        local score = w[3]
        if score < 0 then score = assigned[tostring(-score)] end
        redis.call('ZADD', key, score, settle(w[4]))
        redis.call('ZREMRANGEBYRANK', key, 0, -w[5] - 1)
      end
    end
    local fresh = {}
    for key, want in pairs(resend) do
      local n = tonumber(redis.call('GET', key .. ':v')) or 0
      fresh[#fresh + 1] = {key, n, redis.call('ZCARD', key), redis.call('ZRANGE', key, 0, want), want}
    end
    answers[t] = {ok = true, v = versions, fresh = fresh, s = reserved}
  end
end
return cjson.encode(answers)
"""
