"""Checks deploy/airflow/spark_dpo_dag.py against the Airflow stand-in in airflow_stub/ (Airflow is not installable
here): it compiles, imports, and declares the stage tasks, their order, retries and spark-submit settings, and its
templates use only variables Airflow provides. Run: /usr/bin/python3 deploy/airflow/tests/test_spark_dpo_dag.py
"""
import importlib.util
import py_compile
import re
import sys
import tempfile
import unittest
from pathlib import Path

sys.dont_write_bytecode = True  # leave no __pycache__ in the source tree
HERE = Path(__file__).resolve().parent
DAG_FILE = HERE.parent / "spark_dpo_dag.py"
sys.path.insert(0, str(HERE / "airflow_stub"))

TEMPLATE = re.compile(r"\{\{(.*?)\}\}")
# Template variables Airflow gives every task (a subset of its context).
CONTEXT_VARS = {"ds", "ds_nodash", "run_id", "params"}


def load_dag_module():
    with tempfile.TemporaryDirectory() as tmp:
        py_compile.compile(str(DAG_FILE), doraise=True, cfile=str(Path(tmp) / "spark_dpo_dag.pyc"))
    spec = importlib.util.spec_from_file_location("spark_dpo_dag", DAG_FILE)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


class Params(dict):
    __getattr__ = dict.__getitem__


def render(value, ds, params):
    """Renders the {{ ... }} expressions this DAG uses (plain Python expressions over the context)."""
    if isinstance(value, str):
        return TEMPLATE.sub(lambda m: str(eval(m.group(1).strip(), {"__builtins__": {}},  # noqa: S307
                                                  {"ds": ds, "ds_nodash": ds.replace("-", ""),
                                                   "run_id": "manual__" + ds, "params": params})), value)
    if isinstance(value, list):
        return [render(v, ds, params) for v in value]
    if isinstance(value, dict):
        return {k: render(v, ds, params) for k, v in value.items()}
    return value


def templates_in(value):
    if isinstance(value, str):
        return TEMPLATE.findall(value)
    if isinstance(value, (list, tuple)):
        return [t for v in value for t in templates_in(v)]
    if isinstance(value, dict):
        return [t for v in value.values() for t in templates_in(v)]
    return []


class SparkDpoDagTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.module = load_dag_module()
        cls.dag = cls.module.dag
        cls.params = Params({k: p.value for k, p in cls.dag.params.items()})

    def test_one_task_per_stage(self):
        self.assertEqual("spark_dpo", self.dag.dag_id)
        self.assertEqual({"prepare", "reference", "train", "evaluate", "export"}, set(self.dag.task_ids))

    def test_stages_run_in_data_flow_order(self):
        t = self.dag.task_dict
        self.assertEqual(set(), t["prepare"].upstream_task_ids)
        self.assertEqual({"reference"}, t["prepare"].downstream_task_ids)
        self.assertEqual({"train"}, t["reference"].downstream_task_ids)
        self.assertEqual({"evaluate", "export"}, t["train"].downstream_task_ids)
        self.assertEqual({"train"}, t["evaluate"].upstream_task_ids)
        self.assertEqual({"train"}, t["export"].upstream_task_ids)
        self.assertEqual(["prepare"], [r.task_id for r in self.dag.roots])
        self.assertEqual({"evaluate", "export"}, {l.task_id for l in self.dag.leaves})

    def test_every_task_submits_the_app_jar_main_class_with_its_stage_and_retries(self):
        for task_id, task in self.dag.task_dict.items():
            self.assertEqual("io.sparkdpo.cli.Main", task.java_class, task_id)
            self.assertTrue(task.application.endswith(".jar"), task_id)
            self.assertEqual(task_id, task.application_args[0], task_id)
            self.assertIn("--config", task.application_args, task_id)
            self.assertGreaterEqual(task.retries, 1, task_id)
            self.assertIsNotNone(task.retry_delay, task_id)
            self.assertEqual("spark_dpo", task.conn_id, task_id)

    def test_training_is_a_barrier_stage_with_one_task_per_executor(self):
        conf = render(self.dag.task_dict["train"].conf, "2026-01-02", self.params)
        self.assertEqual(conf["spark.executor.cores"], conf["spark.task.cpus"])
        self.assertEqual("false", conf["spark.dynamicAllocation.enabled"])
        self.assertEqual(str(self.params.workers), conf["spark.executor.instances"])
        self.assertEqual(str(self.params.workers * self.params.executor_cores), conf["spark.cores.max"])
        self.assertIn("spark.scheduler.barrier.maxConcurrentTasksCheck.interval", conf)

    def test_every_stage_is_authenticated_encrypted_reaped_and_redacted(self):
        # The regex is deploy/common.sh's, which DeployScriptsTest holds equal to Redaction.SPARK_REGEX.
        common = (HERE.parent.parent / "common.sh").read_text()
        regex = re.search(r"^SPARK_DPO_REDACTION_REGEX='([^']*)'$", common, re.M).group(1)
        for task_id, task in self.dag.task_dict.items():
            conf = render(task.conf, "2026-01-02", self.params)
            self.assertEqual("true", conf["spark.authenticate"], task_id)
            self.assertEqual("true", conf["spark.network.crypto.enabled"], task_id)
            self.assertEqual("true", conf["spark.task.reaper.enabled"], task_id)
            self.assertEqual("120s", conf["spark.task.reaper.killTimeout"], task_id)
            self.assertEqual(regex, conf["spark.redaction.regex"], task_id)
            self.assertNotIn("spark.authenticate.secret", conf, task_id)

    def test_outputs_are_per_run_date_and_chain_between_stages(self):
        args = {t: render(task.application_args, "2026-01-02", self.params)
                for t, task in self.dag.task_dict.items()}
        work = self.params.work_uri + "/2026-01-02"

        def after(flag, stage):
            return args[stage][args[stage].index(flag) + 1]

        self.assertEqual(self.params.data_uri, after("--input", "prepare"))
        self.assertEqual(work + "/prepared", after("--output", "prepare"))
        self.assertEqual(after("--output", "prepare"), after("--data", "reference"))
        self.assertEqual(after("--output", "reference"), after("--data", "train"))
        self.assertEqual(after("--output", "train"), after("--run", "evaluate"))
        self.assertEqual(after("--output", "reference"), after("--data", "evaluate"))
        self.assertEqual(self.params.eval_prompts_uri, after("--prompts", "evaluate"))
        self.assertEqual(after("--output", "train"), after("--run", "export"))
        self.assertNotEqual(after("--output", "export"), after("--output", "evaluate"))

    def test_training_replicas_match_the_prepared_shards_and_the_executors(self):
        args = {t: render(task.application_args, "2026-01-02", self.params)
                for t, task in self.dag.task_dict.items()}
        train = args["train"]
        workers = str(self.params.workers)
        self.assertEqual(workers, train[train.index("--workers") + 1])
        self.assertEqual("precomputed", train[train.index("--reference-mode") + 1])
        self.assertIn("train.workers=" + workers, args["prepare"], "prepare writes one training shard per replica")
        conf = render(self.dag.task_dict["train"].conf, "2026-01-02", self.params)
        self.assertEqual(workers, conf["spark.executor.instances"])

    def test_templates_use_only_airflow_context_and_declared_params(self):
        for task_id, task in self.dag.task_dict.items():
            for field in task.template_fields:
                for expr in templates_in(getattr(task, field)):
                    names = set(re.findall(r"[A-Za-z_][A-Za-z_0-9]*", expr))
                    params = set(re.findall(r"params\.([A-Za-z_0-9]+)", expr))
                    self.assertTrue(params <= set(self.dag.params), "%s.%s: {{%s}}" % (task_id, field, expr))
                    self.assertTrue(names - params <= CONTEXT_VARS, "%s.%s: {{%s}}" % (task_id, field, expr))
            for name in ("conf", "env_vars"):
                for key in (getattr(task, name) or {}):
                    self.assertNotRegex(key.lower(), r"secret|access\.key|session\.token|password",
                                        "%s puts a credential in %s" % (task_id, name))


def print_stage_args():
    """Prints every task's rendered application_args as JSON, for AirflowDagTest to check against the real CLI."""
    import json
    dag = load_dag_module().dag
    params = Params({k: p.value for k, p in dag.params.items()})
    print(json.dumps({t: render(task.application_args, "2026-01-02", params) for t, task in dag.task_dict.items()}))


if __name__ == "__main__" and sys.argv[1:] == ["--print-args"]:
    print_stage_args()
    sys.exit(0)

if __name__ == "__main__":
    result = unittest.main(exit=False, verbosity=2).result
    failed = len(result.failures) + len(result.errors)
    print("%d passed, %d failed" % (result.testsRun - failed, failed))
    sys.exit(1 if failed or result.testsRun == 0 else 0)
