"""The course's grader (book/instructors.md, "Grading the exercises"; autograder/README.md).

    python -m autograder.course init|release|collect|autograde|feedback|export …
    python -m autograder.calibrate [ASSIGNMENT …]

Importing this package imports nothing else: each module brings what it needs.
"""
