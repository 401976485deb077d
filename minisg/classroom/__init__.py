"""The classroom: what the lessons and their graded exercises use (the engine and the methods never import it).

- lesson.py — ``setup(...)``: the one call that starts every lesson (its options, its figure
  folder, its clock) and the figure helpers the lessons share;
- grading.py — ``minisg check NN``: grades a student's exercise file. Its parts: registry.py
  (the exercises), expect.py (comparing an answer), checks_*.py (one check per exercise),
  student_code.py and worker.py (the student's code, run in a second process with a time limit);
- stubs.py — writes the stubs lessons/exercises/exNN_*.py from the reference solutions
  (``python -m minisg.classroom.stubs``; for minisg's developers).
"""
