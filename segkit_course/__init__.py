"""Instructor tooling for the segkit course, kept apart from the library learners read.

    segkit_course.build   exercises made from the solution notebooks (`segkit-course build | check | start`)
    segkit_course.checks  the exercise notebooks' check_* functions: instant feedback with hints

It uses segkit; segkit never imports it.
"""
