"""The ``>>>`` examples in the library's docstrings run and print what they show (standard ``doctest``)."""
import doctest

import pytest

import acda.functional
import acda.layers

EXAMPLES = [(acda.layers, "ACDAConv2d"), (acda.functional, "acda_conv2d")]


@pytest.mark.parametrize("module, name", EXAMPLES, ids=[name for _, name in EXAMPLES])
def test_docstring_example(module, name):
    finder = doctest.DocTestFinder(recurse=False)
    tests = [t for t in finder.find(getattr(module, name), name, module=module, globs=vars(module)) if t.examples]
    assert tests, f"{module.__name__}.{name} has no >>> example"
    runner = doctest.DocTestRunner()
    for test in tests:
        runner.run(test)
    result = runner.summarize(verbose=False)
    assert result.attempted >= 1 and result.failed == 0, result


@pytest.mark.parametrize("module", sorted({m for m, _ in EXAMPLES}, key=lambda m: m.__name__))
def test_every_example_of_the_module(module):
    result = doctest.testmod(module, report=False)
    assert result.attempted >= 1 and result.failed == 0, result
