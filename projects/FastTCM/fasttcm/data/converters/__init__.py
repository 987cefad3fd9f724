"""Raw scene-text datasets -> the project text JSON, image folders and evaluation ground truth.

* :mod:`.catalog`: the converters by name and the one ``convert`` that runs them
  (``tools/convert_dataset.py``);
* one reader per native format: :mod:`.icdar2015`, :mod:`.totaltext`, :mod:`.ctw1500`,
  :mod:`.msra_td500`, :mod:`.art`, and the streamed :mod:`.synthtext` (:mod:`.synthtext_gt`);
* what they share: :mod:`.source_files` (finding and reading raw files), :mod:`.annotations`
  (the intermediate form), :mod:`.text_json`, :mod:`.icdar_gt` (the ICDAR GT line writer) and
  :mod:`.split_output` (the dataset folder layout);
* :mod:`.str_lmdb`: recognition LMDBs from word crops (``tools/create_lmdb_dataset.py``).
"""
