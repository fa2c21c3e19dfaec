-- Argo CD health of a decnet.io Decky, from what the operator writes (kstatus style).
-- Argo CD runs a health script from argocd-cm in a sandbox: Lua 5.1 base, table and a safe
-- os library only (no string library), with the object as the global `obj`.
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
  hs.message = "Waiting for the operator to observe this decky"
  return hs
end

-- A status older than the spec says nothing about the spec: whatever it claims.
local generation = obj.metadata.generation
if generation ~= nil and (status.observedGeneration == nil or status.observedGeneration < generation) then
  hs.status = "Progressing"
  hs.message = "Waiting for the operator to observe generation " .. tostring(generation)
  return hs
end

-- Stalled: nothing will change until the spec (or the world) does, e.g. a service image
-- that does not exist, a refused recreate, an invalid spec. Its message is Docker's or the
-- validation's words.
local stalled = condition(status, "Stalled")
if stalled ~= nil and stalled.status == "True" then
  hs.status = "Degraded"
  hs.message = text(stalled.message, text(stalled.reason, "Stalled"))
  return hs
end

local lifecycle = status.lifecycle
if lifecycle ~= nil and lifecycle.phase == "Failed" then
  hs.status = "Degraded"
  hs.message = text(lifecycle.message, tostring(lifecycle.operation) .. " Failed")
  return hs
end

local ready = condition(status, "Ready")
if ready ~= nil and ready.status == "True" then
  hs.status = "Healthy"
  hs.message = text(ready.message, "Ready")
  return hs
end

-- Anything else is on its way: no node yet, an operation in flight, or an agent that lost
-- its lease (Ready=Unknown: the containers may well still run; the operator reschedules).
hs.status = "Progressing"
if lifecycle ~= nil and (lifecycle.phase == "Pending" or lifecycle.phase == "Running") then
  hs.message = tostring(lifecycle.operation) .. " " .. lifecycle.phase
elseif ready ~= nil then
  hs.message = text(ready.message, text(ready.reason, "Not ready yet"))
else
  hs.message = "Not ready yet"
end
return hs
