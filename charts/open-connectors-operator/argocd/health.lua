-- Argo CD health check for openconnectors.io/ConnectorInstance, ConnectorAccount and
-- ClusterConnectorAccount.
--
-- Install it in argocd-cm under resource.customizations.health.openconnectors.io_<Kind>, once per
-- kind (see README.md beside this file). This file is the single source: tests/gitops runs it with
-- the conditions the operator writes in every state.
--
-- The operator writes four conditions (Ready, Synced, Reconciling, Stalled; Reconciling and
-- Stalled are abnormal-true, as in kstatus), each with the generation it describes, and advances
-- status.observedGeneration once a generation is handled: applied (for an account: its credentials
-- verified), or judged impossible (Stalled=True). Transient failures are retried
-- (Reconciling=True; an account's open circuit breaker too) and are never Degraded.

local hs = {}

local function find(conditions, kind)
  if conditions == nil then
    return nil
  end
  for _, condition in ipairs(conditions) do
    if condition.type == kind then
      return condition
    end
  end
  return nil
end

local function is_true(condition)
  return condition ~= nil and condition.status == "True"
end

-- "Reason: message", or whichever of the two is set.
local function describe(condition, fallback)
  if condition == nil then
    return fallback
  end
  local reason = condition.reason or ""
  local message = condition.message or ""
  if reason ~= "" and message ~= "" then
    return reason .. ": " .. message
  end
  if message ~= "" then
    return message
  end
  if reason ~= "" then
    return reason
  end
  return fallback
end

local metadata = obj.metadata or {}
local status = obj.status or {}
local generation = metadata.generation
local conditions = status.conditions
local ready = find(conditions, "Ready")
local reconciling = find(conditions, "Reconciling")
local stalled = find(conditions, "Stalled")

-- Written for the object's current generation (conditions carry the generation they describe).
local function current(condition)
  return condition ~= nil
    and (generation == nil or condition.observedGeneration == nil or condition.observedGeneration == generation)
end

-- Being deleted. The API server bumps metadata.generation when it sets deletionTimestamp, so a
-- Stalled condition written by the deletion handler (DeletionBlocked, or the account secrets
-- rejected while deleting) matches the generation, and one left over from before does not.
if metadata.deletionTimestamp ~= nil then
  if is_true(stalled) and (stalled.reason == "DeletionBlocked" or (generation ~= nil and stalled.observedGeneration == generation)) then
    hs.status = "Degraded"
    hs.message = describe(stalled, "Deletion is blocked")
    return hs
  end
  hs.status = "Progressing"
  if is_true(reconciling) and current(reconciling) then
    hs.message = "Deleting: " .. describe(reconciling, "retrying")
  else
    hs.message = "Deleting"
  end
  return hs
end

-- Paused by its user (the annotation openconnectors.io/paused): Argo CD's own word for it. The
-- operator writes nothing while it is set, and Ready keeps the value it had.
local annotations = metadata.annotations or {}
if annotations["openconnectors.io/paused"] == "true" then
  hs.status = "Suspended"
  hs.message = "Paused by the annotation openconnectors.io/paused: the operator writes nothing until it is removed"
  return hs
end

-- The operator has not handled this generation yet: nothing else in status is about it.
-- (observedGeneration 0 is what a schema default on status reads as before the first write.)
local observed = status.observedGeneration
if type(observed) ~= "number" or (generation ~= nil and observed ~= generation) then
  hs.status = "Progressing"
  if is_true(reconciling) and current(reconciling) then
    hs.message = describe(reconciling, "Reconciling")
  elseif generation ~= nil and type(observed) == "number" and observed > 0 then
    hs.message = "Waiting for the operator to handle generation " .. tostring(generation)
      .. " (last handled: " .. tostring(observed) .. ")"
  else
    hs.message = "Waiting for status"
  end
  return hs
end

if is_true(stalled) then
  hs.status = "Degraded"
  hs.message = describe(stalled, "Stalled")
  return hs
end

if is_true(ready) and not is_true(reconciling) then
  hs.status = "Healthy"
  hs.message = describe(ready, "Ready")
  return hs
end

-- Waiting for a Secret, the platform unavailable or rate limiting, a Kubernetes API error: all
-- retried by the operator, so Progressing, even when Ready is still True.
if is_true(reconciling) then
  hs.status = "Progressing"
  hs.message = describe(reconciling, "Reconciling")
  return hs
end

hs.status = "Progressing"
hs.message = "Waiting for status"
return hs
