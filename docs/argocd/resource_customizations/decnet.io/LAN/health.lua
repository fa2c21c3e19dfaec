-- Argo CD health of a decnet.io LAN: its subnet allocation, as the operator reports it in
-- the Ready and Stalled conditions (a LAN has no lifecycle). Sandboxed Lua 5.1, see the
-- Decky's script.
local hs = {}

local function condition(status, ctype)
  if status.conditions == nil then
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
  hs.message = "Waiting for the operator to allocate a subnet"
  return hs
end

local generation = obj.metadata.generation
if generation ~= nil and (status.observedGeneration == nil or status.observedGeneration < generation) then
  hs.status = "Progressing"
  hs.message = "Waiting for the operator to observe generation " .. tostring(generation)
  return hs
end

-- Stalled: the subnet overlaps another LAN's; only an edit fixes it.
local stalled = condition(status, "Stalled")
if stalled ~= nil and stalled.status == "True" then
  hs.status = "Degraded"
  hs.message = text(stalled.message, text(stalled.reason, "Stalled"))
  return hs
end

local ready = condition(status, "Ready")
if ready ~= nil and ready.status == "True" then
  hs.status = "Healthy"
  hs.message = text(ready.message, "Ready")
  return hs
end

-- SubnetHeld (another LAN still releasing it) and PoolExhausted can clear by themselves.
hs.status = "Progressing"
if ready ~= nil then
  hs.message = text(ready.message, text(ready.reason, "No subnet yet"))
else
  hs.message = "No subnet yet"
end
return hs
