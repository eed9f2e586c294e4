-- Argo CD health check for the pterobox.io kinds (GamePanel, GameBox, GameServer).
-- Install it under resource.customizations.health.pterobox.io_<Kind> (see argocd-cm.yaml beside it).
-- Verdicts follow the objects' status: observedGeneration, the Ready condition, and per kind the
-- conditions or state that say "suspended" or "needs a human".
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

-- Reasons of Ready=False that a retry will not fix: a human must act.
local stuck = {
  InvalidSpec = true, PanelNotFound = true, PanelNotAllowed = true, OwnerRefused = true,
  CredentialsMissing = true, CredentialsRejected = true, PanelRefused = true,
  BudgetExceeded = true, Rejected = true,
}

if obj.kind == "GameServer" then
  if status.state == "Suspended" then
    hs.status = "Suspended"
    hs.message = status.message or "Suspended on the panel"
    return hs
  end
  if status.state == "Rejected" or status.state == "Failed" then
    hs.status = "Degraded"
    hs.message = status.message or why
    return hs
  end
  local admitted = c["Admitted"]
  local refusals = { InvalidSpec = true, BudgetExceeded = true, ResizeRejected = true }
  if admitted ~= nil and admitted.status == "False" and refusals[admitted.reason] then
    hs.status = "Degraded"
    hs.message = admitted.message or admitted.reason
    return hs
  end
end

if obj.kind == "GameBox" then
  if isTrue(c["Suspended"]) then
    hs.status = "Suspended"
    hs.message = c["Suspended"].message or "Suspended"
    return hs
  end
  if isTrue(c["OverBudget"]) then
    hs.status = "Degraded"
    hs.message = c["OverBudget"].message or "Over budget"
    return hs
  end
end

if isTrue(ready) then
  hs.status = "Healthy"
  hs.message = why
  return hs
end
if ready ~= nil and stuck[ready.reason] then
  hs.status = "Degraded"
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
