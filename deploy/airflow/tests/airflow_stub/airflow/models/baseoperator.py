"""Stand-in for airflow.models.baseoperator.BaseOperator: task id, retry settings, default_args, dependencies."""
from airflow.models.dag import current_dag

# BaseOperator arguments that default_args may supply.
BASE_ARGS = ("owner", "retries", "retry_delay", "retry_exponential_backoff", "max_retry_delay",
             "execution_timeout", "depends_on_past", "email_on_failure", "pool", "queue", "trigger_rule")


class BaseOperator:
    template_fields = ()

    def __init__(self, task_id, **kwargs):
        dag = kwargs.pop("dag", None) or current_dag()
        if dag is None:
            raise RuntimeError("operator %r created outside a DAG" % task_id)
        unknown = set(kwargs) - set(BASE_ARGS)
        if unknown:
            raise TypeError("%s(task_id=%r) got unexpected arguments: %s"
                            % (type(self).__name__, task_id, sorted(unknown)))
        self.task_id = task_id
        self.dag = dag
        for name in BASE_ARGS:
            setattr(self, name, kwargs.get(name, dag.default_args.get(name)))
        self.upstream_task_ids = set()
        self.downstream_task_ids = set()
        dag.add_task(self)

    def set_downstream(self, others):
        for other in others if isinstance(others, (list, tuple)) else [others]:
            self.downstream_task_ids.add(other.task_id)
            other.upstream_task_ids.add(self.task_id)

    def __rshift__(self, other):
        self.set_downstream(other)
        return other

    def __lshift__(self, other):
        for o in other if isinstance(other, (list, tuple)) else [other]:
            o.set_downstream(self)
        return other

    def __rrshift__(self, other):  # [a, b] >> self
        self.__lshift__(other)
        return self

    def __rlshift__(self, other):  # [a, b] << self
        self.__rshift__(other)
        return self
