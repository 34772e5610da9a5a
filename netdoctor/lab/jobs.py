"""The Job controller: a pod from the template until one succeeds or the back-off limit.

Enough of ``batch/v1`` Jobs for a run-to-completion workload (``completions`` 1,
``parallelism`` 1, ``backoffLimit``); CronJobs are stored and served, not scheduled (create
a Job from one, as ``kubectl create job --from=cronjob/NAME`` does).
"""

from __future__ import annotations

import copy

from netdoctor.lab import events
from netdoctor.lab.api.resources import resource
from netdoctor.lab.api.store import ApiError, Obj, Store, now

JOBS = resource("batch", "jobs")
PODS = resource("", "pods")


def _owned(store: Store, job: Obj) -> list[Obj]:
    return store.children(PODS, job["metadata"]["namespace"], job["metadata"]["uid"])


def _pod_for(job: Obj) -> Obj:
    meta = job["metadata"]
    template = copy.deepcopy(job["spec"]["template"])
    labels = {**(template.get("metadata") or {}).get("labels", {}),
              "batch.kubernetes.io/job-name": meta["name"], "job-name": meta["name"],
              "batch.kubernetes.io/controller-uid": meta["uid"], "controller-uid": meta["uid"]}
    return {"metadata": {"generateName": f"{meta['name']}-", "namespace": meta["namespace"],
                         "labels": labels,
                         "ownerReferences": [{"apiVersion": "batch/v1", "kind": "Job",
                                              "name": meta["name"], "uid": meta["uid"],
                                              "controller": True, "blockOwnerDeletion": True}]},
            "spec": template.get("spec") or {}}


def _condition(kind: str, reason: str, message: str) -> Obj:
    return {"type": kind, "status": "True", "reason": reason, "message": message,
            "lastProbeTime": now(), "lastTransitionTime": now()}


def reconcile_jobs(store: Store) -> None:
    """One pass over every Job."""
    for job in list(store.items(JOBS)):
        status = dict(job.get("status") or {})
        if any(c.get("type") in ("Complete", "Failed") for c in status.get("conditions") or []):
            continue
        pods = _owned(store, job)
        succeeded = sum(p.get("status", {}).get("phase") == "Succeeded" for p in pods)
        failed = sum(p.get("status", {}).get("phase") == "Failed" for p in pods)
        active = [p for p in pods if p.get("status", {}).get("phase") not in
                  ("Succeeded", "Failed") and not p["metadata"].get("deletionTimestamp")]
        limit = int(job["spec"].get("backoffLimit", 6))
        new = {**status, "startTime": status.get("startTime") or now(), "active": len(active),
               "succeeded": succeeded, "failed": failed}
        if succeeded:
            new["completionTime"] = now()
            new["conditions"] = [_condition("Complete", "", "")]
        elif failed > limit:
            new["conditions"] = [_condition("Failed", "BackoffLimitExceeded",
                                            "Job has reached the specified backoff limit")]
        elif not active:
            try:
                created = store.create(PODS, _pod_for(job))
            except ApiError as err:  # e.g. Pod Security Admission: the Job waits, as real ones
                events.record(store, job, "FailedCreate", f"Error creating: {err.message}",
                              type_="Warning", component="job-controller")
                continue
            events.record(store, job, "SuccessfulCreate",
                          f"Created pod: {created['metadata']['name']}",
                          component="job-controller")
            new["active"] = 1
        new = {k: v for k, v in new.items() if v not in (0, None) or k == "active"}
        if new != job.get("status"):
            _write_status(store, job, new)


def _write_status(store: Store, job: Obj, status: Obj) -> None:
    def change(obj: Obj) -> None:
        obj["status"] = status
    store.mutate(JOBS, job["metadata"]["namespace"], job["metadata"]["name"], change,
                 subresource="status")
