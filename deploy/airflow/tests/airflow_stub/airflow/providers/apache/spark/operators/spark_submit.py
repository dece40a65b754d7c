"""Stand-in for airflow.providers.apache.spark.operators.spark_submit.SparkSubmitOperator: records its arguments."""
from airflow.models.baseoperator import BaseOperator

_ACCEPTED = (
    "application", "conf", "conn_id", "files", "py_files", "archives", "driver_class_path", "jars", "java_class",
    "packages", "exclude_packages", "repositories", "total_executor_cores", "executor_cores", "executor_memory",
    "driver_memory", "keytab", "principal", "proxy_user", "name", "num_executors", "status_poll_interval",
    "application_args", "env_vars", "verbose", "spark_binary", "properties_file", "queue", "deploy_mode",
)


class SparkSubmitOperator(BaseOperator):
    template_fields = ("application", "conf", "files", "py_files", "jars", "driver_class_path", "packages",
                       "exclude_packages", "keytab", "principal", "proxy_user", "name", "application_args",
                       "env_vars", "properties_file")

    def __init__(self, *, task_id, **kwargs):
        own = {k: kwargs.pop(k) for k in list(kwargs) if k in _ACCEPTED}
        super().__init__(task_id=task_id, **kwargs)
        if "application" not in own:
            raise TypeError("SparkSubmitOperator(task_id=%r) needs application" % task_id)
        for name in _ACCEPTED:
            setattr(self, name, own.get(name))
        if self.conn_id is None:
            self.conn_id = "spark_default"
