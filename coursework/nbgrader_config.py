# nbgrader configuration for a course taught from this book. Copy this file into the
# course directory (the README's "Teaching with it" walks through it).
c = get_config()  # noqa: F821 (nbgrader provides get_config)

c.CourseDirectory.course_id = "rnn-unfolded"

# The same stubs as the committed hand-outs (tools/make_student.py), so a student sees
# one form of exercise whichever copy they were given.
c.ClearSolutions.code_stub = {"python": 'raise NotImplementedError("Your solution here")'}
c.ClearSolutions.text_stub = "*Your answer here.*"

# Some chapter cells train small models; a loaded grading machine may need more than
# nbgrader's default 30 s for one of them.
c.Execute.timeout = 600

# Where release_assignment / fetch_assignment / submit / collect exchange files. The
# default, /srv/nbgrader/exchange, must exist and be writable by everyone; uncomment to
# use another folder.
# c.Exchange.root = "/srv/nbgrader/exchange"
