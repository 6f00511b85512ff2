-- Phase 13 k sweep: how many ticks until the ring's drift falls below a
-- threshold, for each coupling k.  Each k runs in a fresh trial (tick 0,
-- the config plus phase13.k = k), so the trials are independent and the
-- whole sweep is one deterministic process.
--
--   qallow run -c configs/experiment_phase13.json --script scripts/k_sweep.lua
--   (optional: --script-arg k_min=0.0005 --script-arg k_max=0.008
--    --script-arg steps=16 --script-arg threshold=1e-4 --script-arg limit=5000)
--
-- Rows in <out>/experiment.csv: k, ticks (to drift < threshold, or the limit),
-- reached (false when the limit came first), drift and ethics_total at that tick.
-- Larger k diffuses faster, but the damping term -0.15k*phi leaves a drift
-- floor of about 0.15*k*mean(phi) (docs/models.md), so beyond some k the
-- floor sits above the threshold and the ring needs many more ticks.

local a = qallow.args
local k_min = tonumber(a.k_min) or 0.0005
local k_max = tonumber(a.k_max) or 0.008
local steps = math.tointeger(tonumber(a.steps)) or 16
local threshold = tonumber(a.threshold) or 1e-4
local limit = math.tointeger(tonumber(a.limit)) or 5000
assert(steps >= 2, "steps must be at least 2")

qallow.log(string.format("k sweep: %d values of k in [%g, %g], drift threshold %g, at most %d ticks each",
                         steps, k_min, k_max, threshold, limit))
for i = 0, steps - 1 do
  -- 6 significant digits: 0.0045, not 0.0045000000000000005
  local k = math.min(k_max, tonumber(string.format("%.6g", k_min + (k_max - k_min) * i / (steps - 1))))
  qallow.reset({["phase13.k"] = k})
  local ticks, drift = 0, qallow.signal("phase13.drift")
  while ticks < limit do
    ticks = ticks + qallow.run(1)
    drift = qallow.signal("phase13.drift")
    if drift < threshold then break end
  end
  qallow.emit({k = k, ticks = ticks, reached = drift < threshold, drift = drift,
               ethics_total = qallow.signal("ethics.total")})
end
