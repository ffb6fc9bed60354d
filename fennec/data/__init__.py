"""Data access in one place: the shipped tables (:mod:`fennec.data.shipped`), the offline example image
tasks (:mod:`fennec.data.examples`) and a task's own inputs -- image folders, CSVs, arrays, class names
(:mod:`fennec.data.inputs`)."""
