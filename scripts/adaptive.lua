-- An adaptive controller, run while the host drives the loop: it keeps the
-- ethics total above its threshold (ethics.min_total) by adjusting the vm
-- noise amplitude vm.sigma, which it would rather keep high (exploration).
--
--   qallow run -c configs/experiment_vm.json --script scripts/adaptive.lua
--   (optional: --script-arg sigma_max=0.2 --script-arg window=25
--    --script-arg fixed=1 for the baseline: sigma stays where the config put it)
--
-- Noise lowers vm's stability (S) and harmony (H); decoherence d grows by
-- 1e-5 per tick up to 0.1 and lowers C = 1 - d, so the noise the ethics
-- check tolerates shrinks as the run goes on.  Every `window` ticks the
-- controller looks at the lowest margin (total - min_total) of the window:
-- below `low` it cuts sigma by 30 %, above `high` it raises it by 5 %
-- (multiplicative decrease, slow increase).  Rows every 500 ticks.

local a = qallow.args
local fixed = a.fixed == "1"
local sigma_max = tonumber(a.sigma_max) or 0.2
local sigma_min = 1e-4
local window = math.tointeger(tonumber(a.window)) or 25
local low, high = 0.01, 0.03
local report_every = math.tointeger(tonumber(a.report_every)) or 500

local sigma = qallow.get("vm.sigma")
local failures, window_failures = 0, 0
local lowest = math.huge          -- lowest margin in the current window
local sigma_sum, ticks_seen = 0, 0

qallow.on_tick(function(tick)
  local margin = qallow.signal("ethics.total") - qallow.get("ethics.min_total")
  if margin < 0 then failures = failures + 1; window_failures = window_failures + 1 end
  if margin < lowest then lowest = margin end
  sigma_sum, ticks_seen = sigma_sum + sigma, ticks_seen + 1
end)

qallow.every(window, function(tick)
  if not fixed then
    local next_sigma = sigma
    if lowest < low then
      next_sigma = math.max(sigma_min, sigma * 0.7)
    elseif lowest > high then
      next_sigma = math.min(sigma_max, sigma * 1.05)
    end
    if next_sigma ~= sigma then
      sigma = next_sigma
      qallow.set("vm.sigma", sigma)
    end
  end
  lowest, window_failures = math.huge, 0
end)

qallow.every(report_every, function(tick)
  qallow.emit({tick = tick, sigma = sigma, mean_sigma = sigma_sum / ticks_seen, -- over these report_every ticks
               decoherence = qallow.signal("vm.decoherence"),
               ethics_total = qallow.signal("ethics.total"), failures = failures,
               mode = fixed and "fixed" or "adaptive"})
  sigma_sum, ticks_seen = 0, 0
end)
