-- Phase 12 eps sweep against the ethics margin: for each eps, a fresh trial
-- runs N ticks; the row holds eps and the ethics margin (ethics total minus
-- ethics.min_total) after them, with the phase's entropy and decoherence.
--
--   qallow run -c configs/experiment_phase12.json --script scripts/eps_sweep.lua
--   (optional: --script-arg ticks=700 --script-arg steps=13)
--
-- eps acts through stretch = clamp(eps, 0, 1e-2): it slows the entropy decay
-- (by 2e-7*stretch per tick) and feeds decoherence (1e-7*stretch per tick),
-- both of which lower the total S + C + H.  Values below 0 and above 1e-2
-- act as the clamp's bounds, which the rows show as flat ends.

local a = qallow.args
local ticks = math.tointeger(tonumber(a.ticks)) or 700
local eps_values = {-1e-3, 0, 1e-4, 5e-4, 1e-3, 2e-3, 3e-3, 4e-3, 5e-3, 6e-3, 8e-3, 1e-2, 2e-2}
local steps = math.tointeger(tonumber(a.steps)) or #eps_values

local min_total = qallow.get("ethics.min_total")
qallow.log(string.format("eps sweep: %d values, %d ticks each, ethics.min_total %g", steps, ticks, min_total))
for i = 1, steps do
  local eps = eps_values[i]
  qallow.reset({["phase12.eps"] = eps})
  qallow.run(ticks)
  local total = qallow.signal("ethics.total")
  qallow.emit({eps = eps, ticks = qallow.tick(), ethics_total = total, margin = total - min_total,
               entropy = qallow.signal("phase12.entropy"),
               decoherence = qallow.signal("phase12.decoherence")})
end
