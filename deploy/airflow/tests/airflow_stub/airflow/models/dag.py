"""Stand-in for airflow.models.dag.DAG: a named set of tasks, entered as a context manager."""

_ACCEPTED = {
    "description", "schedule", "schedule_interval", "start_date", "end_date", "catchup", "max_active_runs",
    "max_active_tasks", "default_args", "params", "tags", "dagrun_timeout", "doc_md", "render_template_as_native_obj",
}

_current = []


class DAG:
    def __init__(self, dag_id, **kwargs):
        unknown = set(kwargs) - _ACCEPTED
        if unknown:
            raise TypeError("DAG() got unexpected arguments: %s" % sorted(unknown))
        self.dag_id = dag_id
        self.default_args = dict(kwargs.get("default_args") or {})
        self.params = dict(kwargs.get("params") or {})
        self.kwargs = kwargs
        self.task_dict = {}

    def __enter__(self):
        _current.append(self)
        return self

    def __exit__(self, *exc):
        _current.pop()
        return False

    def add_task(self, task):
        if task.task_id in self.task_dict:
            raise ValueError("duplicate task id %r in DAG %r" % (task.task_id, self.dag_id))
        self.task_dict[task.task_id] = task

    @property
    def task_ids(self):
        return list(self.task_dict)

    @property
    def roots(self):
        return [t for t in self.task_dict.values() if not t.upstream_task_ids]

    @property
    def leaves(self):
        return [t for t in self.task_dict.values() if not t.downstream_task_ids]


def current_dag():
    return _current[-1] if _current else None
