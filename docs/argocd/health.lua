-- Argo CD health check for decnet.io Decky, LAN and Topology (one script for all three).
-- Follows the kstatus convention the operator writes: a status older than the spec is
-- Progressing whatever it says; Stalled=True or a failed lifecycle is Degraded; Ready=True
-- is Healthy; everything else (no status yet, an operation in flight) is Progressing.
-- Lua 5.1 (Argo CD's gopher-lua): no goto, no integer division.
local hs = {}

local function condition(status, ctype)
  if status == nil or status.conditions == nil then
    return nil
  end
  for _, c in ipairs(status.conditions) do
    if c.type == ctype then
      return c
    end
  end
  return nil
end

local function text(value, fallback)
  if value == nil or value == "" then
    return fallback
  end
  return value
end

local status = obj.status
if status == nil then
  hs.status = "Progressing"
  hs.message = "Waiting for the operator to observe this object"
  return hs
end

local generation = obj.metadata.generation
if generation ~= nil and (status.observedGeneration == nil or status.observedGeneration < generation) then
  hs.status = "Progressing"
  hs.message = "Waiting for the operator to observe generation " .. tostring(generation)
  return hs
end

local stalled = condition(status, "Stalled")
if stalled ~= nil and stalled.status == "True" then
  hs.status = "Degraded"
  hs.message = text(stalled.message, text(stalled.reason, "Stalled"))
  return hs
end

local lifecycle = status.lifecycle
if lifecycle ~= nil and lifecycle.phase == "failed" then
  hs.status = "Degraded"
  hs.message = text(lifecycle.message, tostring(lifecycle.operation) .. " failed")
  return hs
end

local ready = condition(status, "Ready")
if ready ~= nil and ready.status == "True" then
  hs.status = "Healthy"
  hs.message = text(ready.message, "Ready")
  return hs
end

hs.status = "Progressing"
if lifecycle ~= nil and (lifecycle.phase == "pending" or lifecycle.phase == "running") then
  hs.message = tostring(lifecycle.operation) .. " " .. lifecycle.phase
elseif ready ~= nil then
  hs.message = text(ready.message, text(ready.reason, "Not ready yet"))
else
  hs.message = "Not ready yet"
end
return hs
