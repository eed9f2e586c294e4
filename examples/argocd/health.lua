-- Argo CD health check for the pterobox.io kinds (GamePanel, GameBox, GameServer).
-- Install it under resource.customizations.health.pterobox.io_<Kind> (see argocd-cm.yaml beside it).
-- Verdicts follow the objects' status: observedGeneration, the state or condition that says
-- "suspended", kstatus' Stalled condition ("needs a human"), and the Ready condition.
local hs = {}

local function conditions(status)
  local byType = {}
  if status ~= nil and status.conditions ~= nil then
    for _, c in ipairs(status.conditions) do
      byType[c.type] = c
    end
  end
  return byType
end

local function isTrue(c)
  return c ~= nil and c.status == "True"
end

if obj.metadata ~= nil and obj.metadata.deletionTimestamp ~= nil then
  hs.status = "Progressing"
  hs.message = "Being deleted"
  return hs
end

local status = obj.status
if status == nil or status.observedGeneration == nil then
  hs.status = "Progressing"
  hs.message = "Waiting for the operator"
  return hs
end
if obj.metadata.generation ~= nil and status.observedGeneration < obj.metadata.generation then
  hs.status = "Progressing"
  hs.message = "Waiting for the operator to observe generation " .. obj.metadata.generation
  return hs
end

local c = conditions(status)
local ready = c["Ready"]
local why = ""
if ready ~= nil and ready.message ~= nil then
  why = ready.message
end

if obj.kind == "GameServer" and status.state == "Suspended" then
  hs.status = "Suspended"
  hs.message = status.message or "Suspended on the panel"
  return hs
end
if obj.kind == "GameBox" and isTrue(c["Suspended"]) then
  hs.status = "Suspended"
  hs.message = c["Suspended"].message or "Suspended"
  return hs
end

-- kstatus' Stalled: the operator found a state that only a human can move on (a rejected server
-- or resize, a failed install, the panel's refusal, a box over budget, an invalid spec, refused
-- credentials). The same condition makes Flux report Failed.
local stalled = c["Stalled"]
if isTrue(stalled) then
  hs.status = "Degraded"
  hs.message = stalled.message or stalled.reason
  return hs
end

if isTrue(ready) then
  hs.status = "Healthy"
  hs.message = why
  return hs
end
hs.status = "Progressing"
if why ~= "" then
  hs.message = why
else
  hs.message = "Waiting for Ready"
end
return hs
