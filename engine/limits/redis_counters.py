"""Counters shared by every replica through one Redis: each admission and release is one Lua script,
and the calls one replica makes in one turn of its event loop share a round trip (redis_pipe.py).

Keys, all under the configured prefix (e.g. "turnout:") and the key's id:

    limit:{key_id}:req:{minute}     requests admitted in that minute (string integer, expires after 120 s)
    limit:{key_id}:tok:{minute}     tokens released in that minute (string integer, expires after 120 s)
    limit:{key_id}:inflight         sorted set of tickets in flight, scored by admission time (Redis
                                    clock, milliseconds); tickets older than `stale_after` are dropped
    limit:{key_id}:spend:{period}   spend of that budget period in nano-units (string integer)
    limit:{key_id}:held             hash of ticket -> nano-units set aside by a request in flight (budget
                                    keys only); a stale ticket's entry goes with it, and the whole hash
                                    expires `stale_after` after the newest reservation

Money is counted in integers: Redis' INCRBYFLOAT works in long double and would drift, so a cost is
stored as cost * 10^9 rounded half-up, and read back as an exact Decimal. SQL keeps up to 10 decimal
places, so a cost below half a nano-unit per request is lost here (SQL still has it, and seeds the next
reload with it). Limit comparisons inside the script use Lua doubles, exact below 2^53 nano-units
(about nine million in money); the stored sum itself is exact at any size.

Every failure to reach Redis becomes CountersUnavailable, for each call of a round trip that failed,
and no call retries (only a script Redis does not know yet is sent again, whole: it has not run): the
timeouts are short and a retried script could count a request or a cost twice.
"""

from __future__ import annotations

from collections.abc import Sequence
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

from engine.limits.counters import CountersUnavailable, KeyLimits, Release, Verdict
from engine.limits.redis_pipe import RedisPipe, ReplyError, Script

__all__ = ["RedisCounters"]

CONNECT_TIMEOUT = 0.5  # seconds: a dead Redis must not hold a request up
OPERATION_TIMEOUT = 0.5
NANO = 9  # decimal places of the stored spend
_ONE = Decimal(1)

# Seeds a period's spend from SQL: created at the seed, or raised to it (SQL counts every replica's
# recorded spend, which may already exceed what this key shows), never lowered.
_SEEDED = """
local function seeded(key, seed, ttl)
  local spend = redis.call('GET', key)
  if not spend then
    if ttl > 0 then redis.call('SET', key, seed, 'EX', ttl) else redis.call('SET', key, seed) end
    return seed
  end
  if tonumber(spend) < tonumber(seed) then
    redis.call('SET', key, seed, 'KEEPTTL')
    return seed
  end
  return spend
end
"""

# KEYS: req, tok, inflight, spend, held
# ARGV: ticket, stale_ms, seed, budget_ttl, budget, parallel, rpm, tpm (a negative limit is unlimited),
#       reserve (nano-units to set aside for this request)
# Returns {refused or '', requests, tokens, inflight, spend, reserved}; decides like local._refusal,
# in the same order, the budget against the spend plus what the requests in flight set aside.
_ADMIT = Script(
    _SEEDED
    + """
local function reached(limit, count)
  local bound = tonumber(limit)
  return bound >= 0 and count >= bound
end
local clock = redis.call('TIME')  -- the server's clock: replicas' clocks may disagree
local now = tonumber(clock[1]) * 1000 + math.floor(tonumber(clock[2]) / 1000)
local stale = '(' .. (now - tonumber(ARGV[2]))
local reserved = 0
if tonumber(ARGV[5]) >= 0 then
  for _, ticket in ipairs(redis.call('ZRANGEBYSCORE', KEYS[3], '-inf', stale)) do
    redis.call('HDEL', KEYS[5], ticket)  -- a stale ticket's reservation goes with it
  end
  for _, amount in ipairs(redis.call('HVALS', KEYS[5])) do reserved = reserved + tonumber(amount) end
end
redis.call('ZREMRANGEBYSCORE', KEYS[3], '-inf', stale)
local requests = tonumber(redis.call('GET', KEYS[1]) or '0')
local tokens = tonumber(redis.call('GET', KEYS[2]) or '0')
local inflight = redis.call('ZCARD', KEYS[3])
local spend = seeded(KEYS[4], ARGV[3], tonumber(ARGV[4]))
local refused = ''
if reached(ARGV[5], tonumber(spend) + reserved) then refused = 'budget'
elseif reached(ARGV[6], inflight) then refused = 'parallel'
elseif reached(ARGV[7], requests) then refused = 'rpm'
elseif reached(ARGV[8], tokens) then refused = 'tpm'
else
  requests = redis.call('INCR', KEYS[1])
  redis.call('EXPIRE', KEYS[1], 120)
  redis.call('ZADD', KEYS[3], now, ARGV[1])
  -- the newest ticket is the last to go stale, so the whole set may go with it
  redis.call('PEXPIRE', KEYS[3], ARGV[2])
  inflight = redis.call('ZCARD', KEYS[3])
  if tonumber(ARGV[9]) > 0 then
    redis.call('HSET', KEYS[5], ARGV[1], ARGV[9])
    redis.call('PEXPIRE', KEYS[5], ARGV[2])
  end
end
return {refused, requests, tokens, inflight, spend, reserved}
"""
)

# KEYS: tok, inflight, spend, held     ARGV: ticket, tokens, cost, seed, budget_ttl
# The cost replaces the request's reservation.
_RELEASE = Script(
    _SEEDED
    + """
redis.call('ZREM', KEYS[2], ARGV[1])
redis.call('HDEL', KEYS[4], ARGV[1])
if tonumber(ARGV[2]) ~= 0 then
  redis.call('INCRBY', KEYS[1], ARGV[2])
  redis.call('EXPIRE', KEYS[1], 120)  -- outlives its minute, so a late release still lands in it
end
seeded(KEYS[3], ARGV[4], tonumber(ARGV[5]))
if ARGV[3] ~= '0' then redis.call('INCRBY', KEYS[3], ARGV[3]) end
return 1
"""
)


class RedisCounters:
    """The Counters of every replica at once; `stale_after` (seconds) frees the slot of a request whose
    replica died before releasing it. Calls go over one pipelined connection (redis_pipe): admissions
    and releases made in one turn of the loop share a round trip, and a release always reaches Redis
    after its own admission."""

    def __init__(self, url: str, prefix: str, *, stale_after: float = 900.0) -> None:
        self.pipe = RedisPipe(url, connect_timeout=CONNECT_TIMEOUT, timeout=OPERATION_TIMEOUT)
        self._prefix = prefix
        self._stale_ms = max(1, round(stale_after * 1000))

    def _key(self, limits: KeyLimits) -> str:
        return f"{self._prefix}limit:{limits.key_id}"

    async def admit(
        self, limits: KeyLimits, ticket: str, minute: int, reserve: Decimal = Decimal(0)
    ) -> Verdict:
        key = self._key(limits)
        keys = (
            f"{key}:req:{minute}",
            f"{key}:tok:{minute}",
            f"{key}:inflight",
            _spend_key(key, limits),
            f"{key}:held",
        )
        args = (
            ticket,
            self._stale_ms,
            _to_nano(limits.budget_seed),
            limits.budget_ttl,
            -1 if limits.budget is None else _to_nano(limits.budget),
            _unlimited(limits.parallel),
            _unlimited(limits.rpm),
            _unlimited(limits.tpm),
            _to_nano(reserve),
        )
        refused, requests, tokens, inflight, spend, reserved = await self._call(_ADMIT, keys, args)
        return Verdict(
            refused.decode() or None,
            int(requests),
            int(tokens),
            int(inflight),
            _from_nano(spend),
            _from_nano(reserved),
        )

    async def release(self, limits: KeyLimits, ticket: str, minute: int, tokens: int, cost: Decimal) -> None:
        await self._call(_RELEASE, *self._release_call(Release(limits, ticket, tokens, cost), minute))

    async def release_many(self, releases: Sequence[Release], minute: int) -> None:
        """Every release in one round trip. A script Redis does not know (it restarted since the last
        admission) is sent again whole, one by one."""
        calls = [self._release_call(release, minute) for release in releases]
        try:
            replies = await self.pipe.call_many([_RELEASE.evalsha(keys, args) for keys, args in calls])
        except OSError as error:
            raise CountersUnavailable(f"Redis counters: {error}") from error
        for (keys, args), reply in zip(calls, replies, strict=True):
            if _unknown_script(reply):
                await self._call(_RELEASE, keys, args)
            elif isinstance(reply, Exception):
                raise CountersUnavailable(f"Redis counters: {reply}")

    def _release_call(self, release: Release, minute: int) -> tuple[tuple[str, ...], tuple[str | int, ...]]:
        key = self._key(release.limits)
        keys = (f"{key}:tok:{minute}", f"{key}:inflight", _spend_key(key, release.limits), f"{key}:held")
        args = (
            release.ticket,
            release.tokens,
            _to_nano(release.cost),
            _to_nano(release.limits.budget_seed),
            release.limits.budget_ttl,
        )
        return keys, args

    async def _call(self, script: Script, keys: Sequence[str], args: Sequence[str | int]) -> Any:
        """The script's reply; Redis learns a script it does not know from the call that needs it."""
        try:
            reply = await self.pipe.call(script.evalsha(keys, args))
            if _unknown_script(reply):
                reply = await self.pipe.call(script.eval(keys, args))
        except OSError as error:  # refused, lost, or timed out
            raise CountersUnavailable(f"Redis counters: {error}") from error
        if isinstance(reply, Exception):
            raise CountersUnavailable(f"Redis counters: {reply}")
        return reply

    async def close(self) -> None:
        await self.pipe.close()


def _unknown_script(reply: object) -> bool:
    return isinstance(reply, ReplyError) and str(reply).startswith("NOSCRIPT")


def _spend_key(key: str, limits: KeyLimits) -> str:
    return f"{key}:spend:{limits.budget_period}"


def _unlimited(limit: int | None) -> int:
    return -1 if limit is None else limit


def _to_nano(amount: Decimal) -> int:
    """Money as an integer of nano-units, rounded half-up (SQL keeps 10 places, we keep 9)."""
    if not amount:  # most seeds and reservations are 0, and the Decimal steps cost a microsecond or two
        return 0
    return int(amount.scaleb(NANO).quantize(_ONE, rounding=ROUND_HALF_UP))


def _from_nano(value: bytes | int) -> Decimal:
    return Decimal(int(value)).scaleb(-NANO)
