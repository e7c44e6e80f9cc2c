"""The DAG manifest (``apiVersion: kubedag.io/v1alpha1``, ``kind: DAG``) as pydantic v2 models.

Numbers and booleans are strict (``"3"`` is not 3, ``"yes"`` is not true), as the Kubernetes API server
checks JSON types, so ``kubedag dags validate`` and ``kubectl apply`` agree. Field names are camelCase in
YAML (Kubernetes convention) and snake_case in Python. Unknown fields are rejected everywhere except in
``metadata`` and ``status``, which Kubernetes owns, and in the Kubernetes objects passed through to pods
(``affinity``, ``tolerations``, ``podTemplate.spec``, and ``volumes``/``volumeMounts`` items beyond the
``name``/``mountPath`` checked here), which the API server validates when it creates a pod. These models
check each field on its own (types, names, cron, timezone, durations, dates, Jinja syntax, label keys and
values); checks across fields (duplicate names, unknown ``dependsOn``, cycles, ``endDate`` before
``startDate``) live in :mod:`kubedag.core.spec.loader`, which reports every problem of a manifest at once.
Names, labels, durations, dates, templates and the Kubernetes sub-objects are the building blocks of
:mod:`kubedag.core.spec.fields` (re-exported here).
"""

from __future__ import annotations

from datetime import timedelta
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, StrictBool, StrictInt, model_validator
from pydantic.alias_generators import to_camel

from kubedag.core.spec.fields import (  # noqa: F401 - re-exported: the building blocks of the manifest's models
    API_VERSION, DNS1123_LABEL, DNS1123_SUBDOMAIN, ENV_NAME, LABEL_NAME, MAX_NAME, MAX_SUBDOMAIN, TAG_MAX_LEN,
    TASK_NAME, Annotations, DAGName, DateTimeField, DNS1123Label, DNS1123Subdomain, Duration, Emails, EnvList,
    EnvName, EnvVar, ImagePullPolicy, KubeObject, Labels, Owner, PodTemplate, PodTemplateMeta, Quantity, Resources,
    SecretReference, StrictModel, TaskName, TemplatedStr, Volume, VolumeMount, _dns1123_label, _dns1123_subdomain,
    _env_list, _env_name, _one_of, _schedule, _task_name, _timezone, _unique_by, parse_datetime,
)
from kubedag.core.states import TriggerRule

SENSOR_NOT_MET_EXIT_CODE = 75
"""A sensor's check exits with this code when its condition is not met yet (``EX_TEMPFAIL`` of
``sysexits.h``: "try again later"); 0 means met, any other code is a failure (retried by ``retries``)."""

TaskStateName = Literal["none", "scheduled", "queued", "running", "success", "failed", "up_for_retry",
                        "up_for_reschedule", "upstream_failed", "skipped", "removed"]
RunStateName = Literal["queued", "running", "success", "failed"]


class SecretKeySelector(StrictModel):
    """A key of a Secret in the DAG's namespace, as Kubernetes' ``SecretKeySelector``."""

    name: DNS1123Subdomain
    key: Annotated[str, Field(min_length=1)]


class FileCheck(StrictModel):
    """The built-in ``file`` sensor (Airflow's ``FileSensor``): met when ``path`` (a glob, templated) matches at
    least one file and, if ``marker`` is set, a file of that name (e.g. ``_SUCCESS``) exists in every folder
    holding a match. Runs in kubedag's own image with the task's volumes mounted."""

    path: TemplatedStr
    marker: TemplatedStr | None = None


class HttpCheck(StrictModel):
    """The built-in ``http`` sensor (Airflow's ``HttpSensor``): met when a request to ``url`` answers one of
    ``expectedStatus`` and, if ``jsonPath`` is set, the JSON body has a match for it (equal to ``expectedValue``
    when that is set). Connection errors and other statuses are "not yet". Runs in kubedag's own image."""

    url: TemplatedStr
    method: Literal["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"] = "GET"
    headers: dict[str, TemplatedStr] = Field(default_factory=dict)
    body: TemplatedStr | None = None
    expected_status: list[Annotated[StrictInt, Field(ge=100, le=599)]] = Field(default_factory=lambda: [200])
    json_path: str | None = Field(None, description="A JSONPath such as `$.status` or `$.items[*].ready`.")
    expected_value: Any = None
    request_timeout: Duration = Field(timedelta(seconds=10), description="Timeout of one request.")


class ExternalTaskCheck(StrictModel):
    """The built-in ``externalTask`` sensor (Airflow's ``ExternalTaskSensor``): waits for task ``task`` (or, with
    no ``task``, the whole run) of DAG ``dag`` at this run's logical date shifted back by ``executionDelta``, or at
    the dates ``logicalDates`` renders to (a template giving one ISO date or a JSON list). Met when every one is in
    ``allowedStates``; fails when any is in ``failedStates``; skipped when any is in ``skippedStates``.
    Evaluated by the controller (locally by the runner) against the metadata DB: it needs no pod."""

    dag: DAGName
    task: TaskName | None = None
    execution_delta: Duration | None = None
    logical_dates: TemplatedStr | None = None
    allowed_states: list[str] = Field(default_factory=lambda: ["success"])
    failed_states: list[str] = Field(default_factory=list)
    skipped_states: list[str] = Field(default_factory=list)

    @model_validator(mode="after")
    def _dates_or_delta(self) -> ExternalTaskCheck:
        if self.execution_delta is not None and self.logical_dates is not None:
            raise ValueError("set only one of executionDelta, logicalDates")
        return self


class SensorSpec(StrictModel):
    """Makes a task a sensor (Airflow's ``BaseSensorOperator``): its check is run until it exits 0.

    The check is the task's ``command`` (exit 0: met, 75: not yet, other: failure) or one of the built-in
    kinds ``file``, ``http``, ``externalTask``. ``mode: poke`` keeps one process or pod that repeats the check every
    ``pokeInterval`` and holds its slot; ``mode: reschedule`` runs the check once per poke and between pokes the
    task instance is ``up_for_reschedule`` and holds no slot. Past ``timeout`` (default 7 days, Airflow's) the
    task fails without retrying, or is skipped with ``softFail``. ``exponentialBackoff`` grows the interval as
    Airflow's ``_get_next_poke_interval``, up to ``maxWait``."""

    mode: Literal["poke", "reschedule"] = "poke"
    poke_interval: Duration = timedelta(seconds=60)
    timeout: Duration = timedelta(days=7)
    soft_fail: StrictBool = False
    exponential_backoff: StrictBool = False
    max_wait: Duration | None = None
    file: FileCheck | None = None
    http: HttpCheck | None = None
    external_task: ExternalTaskCheck | None = None

    @model_validator(mode="after")
    def _one_kind(self) -> SensorSpec:
        _one_of(self, ("file", "http", "external_task"), required=False)
        return self

    @property
    def builtin(self) -> str | None:
        """The built-in kind (``file``, ``http``, ``externalTask``), or None for a command sensor."""
        return next((to_camel(n) for n in ("file", "http", "external_task") if getattr(self, n) is not None), None)


class TriggerSpec(StrictModel):
    """Makes a task trigger a run of another DAG (Airflow's ``TriggerDagRunOperator``); it needs no command or
    image: the controller (locally, the runner) creates the run. ``conf`` values and ``logicalDate`` are templated;
    the run is manual, at ``logicalDate`` (default: now). ``resetDagRun`` replaces a run at that logical date;
    without it an existing run fails the task. ``waitForCompletion`` keeps the task running until the triggered run
    reaches one of ``allowedStates`` (success) or ``failedStates`` (failure), checked every ``pokeInterval``."""

    dag: DAGName
    conf: dict[str, Any] = Field(default_factory=dict)
    logical_date: TemplatedStr | None = None
    trigger_run_id: TemplatedStr | None = None
    reset_dag_run: StrictBool = False
    wait_for_completion: StrictBool = False
    poke_interval: Duration = timedelta(seconds=60)
    allowed_states: list[RunStateName] = Field(default_factory=lambda: ["success"])
    failed_states: list[RunStateName] = Field(default_factory=lambda: ["failed"])


class SlackNotifier(StrictModel):
    """A Slack incoming webhook; its URL is read from a Secret (``webhookUrlFrom``), never written in the DAG."""

    webhook_url_from: SecretKeySelector
    channel: str | None = None


class WebhookNotifier(StrictModel):
    """A generic JSON webhook: kubedag POSTs the notification as JSON to ``url`` (or the URL in ``urlFrom``)."""

    url: str | None = None
    url_from: SecretKeySelector | None = None
    headers: dict[str, str] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _one_url(self) -> WebhookNotifier:
        _one_of(self, ("url", "url_from"))
        return self


class Notifier(StrictModel):
    """Where a callback goes (Airflow's notifiers): one of ``slack`` or ``webhook``."""

    slack: SlackNotifier | None = None
    webhook: WebhookNotifier | None = None

    @model_validator(mode="after")
    def _one_target(self) -> Notifier:
        _one_of(self, ("slack", "webhook"))
        return self


class ConfigMapRef(StrictModel):
    """A ConfigMap of the DAG's namespace, as ``envFrom``'s ``configMapRef``."""

    name: DNS1123Subdomain


class SecretRef(StrictModel):
    """A Secret of the DAG's namespace, as ``envFrom``'s ``secretRef``."""

    name: DNS1123Subdomain


class VariablesSource(StrictModel):
    """Where Airflow Variables come from: each key of the ConfigMap or Secret is a variable; Secret values are masked."""

    config_map_ref: ConfigMapRef | None = None
    secret_ref: SecretRef | None = None

    @model_validator(mode="after")
    def _one_source(self) -> VariablesSource:
        _one_of(self, ("config_map_ref", "secret_ref"))
        return self


class ConnectionsSource(StrictModel):
    """A Secret whose keys are connection ids and values Airflow connection URIs (``postgres://u:p@host:5432/db``)."""

    secret_ref: SecretRef


class TaskDefaults(StrictModel):
    """Airflow's ``default_args``: values every task inherits unless it sets its own.

    ``None`` means "not set here". Effective defaults when nobody sets them are Airflow 2.10's:
    ``retries`` 0, ``retryDelay`` 300 s, no exponential backoff, no ``maxRetryDelay``, no timeout.
    A task's own value replaces the default's whole (an empty ``volumes: []`` drops the default's
    volumes), except ``env``, which merges by name. The Kubernetes fields (``nodeSelector`` to
    ``imagePullPolicy``) are ignored by local runs.
    """

    image: str | None = None
    env: EnvList = Field(default_factory=list)
    resources: Resources | None = None
    retries: Annotated[StrictInt, Field(ge=0)] | None = None
    retry_delay: Duration | None = None
    retry_exponential_backoff: StrictBool | None = None
    max_retry_delay: Duration | None = None
    execution_timeout: Duration | None = None
    node_selector: Labels | None = Field(None, description="Node labels the pod must run on (the pod's `nodeSelector`).")
    tolerations: list[dict[str, Any]] | None = Field(None, description="The pod's `tolerations` (Kubernetes' `Toleration`s).")
    affinity: dict[str, Any] | None = Field(None, description="The pod's `affinity` (Kubernetes' `Affinity`).")
    service_account_name: DNS1123Subdomain | None = Field(None, description="The ServiceAccount the pod runs as.")
    volumes: Annotated[list[Volume], AfterValidator(_unique_by("name", "volume name"))] | None = Field(
        None, description="The pod's `volumes`."
    )
    volume_mounts: Annotated[list[VolumeMount], AfterValidator(_unique_by("mount_path", "mountPath"))] | None = Field(
        None, description="Volumes mounted into the task's container; each `name` is one of the pod's volumes."
    )
    image_pull_secrets: list[SecretReference] | None = Field(
        None, description="Secrets holding registry credentials for the image (`[{name: regcred}]`)."
    )
    image_pull_policy: ImagePullPolicy | None = Field(
        None, description="`Always`, `IfNotPresent` or `Never`. Default: Kubernetes' (`Always` for `:latest`)."
    )
    pool: DNS1123Subdomain | None = Field(
        None, description="The Pool whose slots the task takes (default: `default-pool`, 128 slots unless a Pool says otherwise)."
    )
    pool_slots: Annotated[StrictInt, Field(ge=1)] | None = Field(None, description="Slots of the pool one try takes (default 1).")
    priority_weight: StrictInt | None = Field(None, description="Airflow's `priority_weight` (default 1).")
    weight_rule: Literal["downstream", "upstream", "absolute"] | None = Field(
        None, description="How the effective priority is summed (Airflow's `weight_rule`, default `downstream`)."
    )
    sla: Duration | None = Field(None, description="The task should succeed within this time after the run's data interval ends.")
    on_failure: list[Notifier] | None = Field(None, description="Notified when a task instance fails (Airflow's `on_failure_callback`).")
    on_success: list[Notifier] | None = Field(None, description="Notified when a task instance succeeds.")
    on_retry: list[Notifier] | None = Field(None, description="Notified when a try fails and will be retried.")
    owner: Owner | None = Field(None, description="Who owns the task (Airflow's `owner`); shown by `dags list`.")
    email: Emails | None = Field(None, description="An address or a list of addresses (Airflow's `email`), kept as metadata.")


class TaskSpec(TaskDefaults):
    """One task: a command run in its own process or pod. ``command``/``args``/``env`` are templated."""

    name: TaskName
    kind: Literal["empty"] | None = Field(
        None, description="`empty`: a task that does nothing and succeeds with no process or pod (Airflow's `EmptyOperator`)."
    )
    command: list[TemplatedStr] = Field(default_factory=list)
    args: list[TemplatedStr] = Field(default_factory=list)
    depends_on: list[str] = Field(default_factory=list)
    trigger_rule: TriggerRule = TriggerRule.ALL_SUCCESS
    pod_template: PodTemplate | None = Field(
        None, description="Merged over the task's pod after `spec.podTemplate` (`{metadata: {labels, annotations}, spec}`)."
    )
    sensor: SensorSpec | None = Field(None, description="Makes the task a sensor (poke or reschedule).")
    trigger: TriggerSpec | None = Field(None, description="Makes the task trigger a run of another DAG.")
    branch: StrictBool = Field(
        False, description="The task's XCom return value names the downstream task(s) to follow; the others are skipped."
    )
    multiple_outputs: StrictBool = Field(
        False, description="A JSON object return value also pushes each top-level key as its own XCom key."
    )

    @model_validator(mode="after")
    def _kind(self) -> TaskSpec:
        if self.sensor is not None and self.trigger is not None:
            raise ValueError("a task is a sensor or a trigger, not both")
        builtin = self.trigger is not None or (self.sensor is not None and self.sensor.builtin is not None)
        if builtin and (self.command or self.args):
            what = "trigger" if self.trigger is not None else f"sensor.{self.sensor.builtin}"  # type: ignore[union-attr]
            raise ValueError(f"a {what} task runs kubedag's own check: remove command and args")
        if self.branch and self.trigger is not None:
            raise ValueError("a trigger task cannot be a branch")
        if self.kind == "empty":
            given = [n for n, v in (("command", self.command), ("args", self.args), ("sensor", self.sensor),
                                    ("trigger", self.trigger), ("branch", self.branch)) if v]
            if given:
                raise ValueError(f"a kind: empty task does nothing: remove {', '.join(given)}")
        return self


class DAGSpec(StrictModel):
    """The ``spec`` of a DAG; fields and defaults as Airflow 2.10's ``DAG`` arguments.

    ``schedule`` null (the default) means manual runs only (Airflow's ``schedule=None``);
    ``catchup`` defaults to true (Airflow 2's ``catchup_by_default``); ``maxActiveRuns`` and
    ``maxActiveTasks`` default to 16 (Airflow's ``max_active_runs_per_dag`` / ``max_active_tasks_per_dag``).
    Naive ``startDate``/``endDate`` are read in ``timezone``.
    """

    description: str | None = Field(None, description="What the DAG does (Airflow's `description`); shown by `dags list`.")
    owner: Owner | None = Field(
        None, description="The owner of every task that sets none, in `defaults` or itself (Airflow's `owner` in `default_args`)."
    )
    email: Emails | None = Field(
        None, description="Addresses of every task that sets none (Airflow's `email` in `default_args`), kept as metadata."
    )
    schedule: Annotated[str | None, AfterValidator(_schedule), Field(description=(
        "A cron expression, a preset (`@daily`, ...), `@once`, or a duration such as `10m` (every 10 minutes "
        "from `startDate`, Airflow's `timedelta` schedule); null: manual runs only."))] = None
    timezone: Annotated[str, AfterValidator(_timezone)] = "UTC"
    start_date: DateTimeField | None = None
    end_date: DateTimeField | None = None
    catchup: StrictBool = True
    paused: StrictBool = False
    max_active_runs: Annotated[StrictInt, Field(ge=1)] = 16
    max_active_tasks: Annotated[StrictInt, Field(ge=1)] = 16
    tags: list[Annotated[str, Field(min_length=1, max_length=TAG_MAX_LEN)]] = Field(
        default_factory=list, description="Labels to find the DAG by (Airflow's `tags`); shown by `dags list`."
    )
    params: dict[str, Any] = Field(default_factory=dict)
    defaults: TaskDefaults = Field(default_factory=TaskDefaults)
    pod_template: PodTemplate | None = Field(
        None, description="Merged over every task's pod, before the task's own `podTemplate` "
        "(`{metadata: {labels, annotations}, spec}`)."
    )
    dagrun_timeout: Duration | None = Field(None, description="A run still unfinished this long after it started fails.")
    on_failure: list[Notifier] = Field(default_factory=list, description="Notified when a run fails.")
    on_success: list[Notifier] = Field(default_factory=list, description="Notified when a run succeeds.")
    on_sla_miss: list[Notifier] = Field(default_factory=list, description="Notified when a task misses its `sla`.")
    variables_from: list[VariablesSource] = Field(default_factory=list, description="ConfigMaps and Secrets holding `var.value.*`.")
    connections_from: list[ConnectionsSource] = Field(default_factory=list, description="Secrets holding connection URIs (`conn.*`).")
    tasks: Annotated[list[TaskSpec], Field(min_length=1)]


class KubeMeta(BaseModel):
    """The part of Kubernetes' ``ObjectMeta`` kubedag reads; other metadata fields are kept, not checked.

    ``name`` may be absent (an object created with ``generateName``)."""

    model_config = ConfigDict(extra="allow", frozen=True)

    name: str | None = None
    namespace: str | None = None
    labels: dict[str, str] = Field(default_factory=dict)
    annotations: dict[str, str] = Field(default_factory=dict)


class ObjectMeta(KubeMeta):
    """A DAG's metadata: its ``name`` is required and is a DNS-1123 label (it names runs and pods)."""

    name: DAGName


class DAGManifest(StrictModel):
    """A whole DAG manifest as ``kubectl apply`` takes it."""

    api_version: Literal["kubedag.io/v1alpha1"]
    kind: Literal["DAG"]
    metadata: ObjectMeta
    spec: DAGSpec
    status: dict[str, Any] | None = None
