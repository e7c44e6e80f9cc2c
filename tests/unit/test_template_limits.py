"""Issue 13: what a template may produce is bounded, so ``{{ 'x' * 100000000 }}`` neither takes the controller's
memory nor makes a pod the API server refuses; the error names the field and the size."""
from __future__ import annotations

import tracemalloc

import pytest

from kubedag.core import templating
from kubedag.core.template_limits import MAX_FIELD_BYTES, MAX_TASK_BYTES

HUGE = [
    ("{{ 'x' * 100000000 }}", 'repeating 1 characters or items 100000000 times is over the cap of 262144'),
    ("{{ [0] * 100000000 }}", 'repeating 1 characters or items 100000000 times'),
    ("{{ 'x'|center(100000000) }}", 'the filter center with 100000000 is over the cap'),
    ("{{ 'x'.ljust(100000000) }}", 'str.ljust with 100000000 is over the cap'),
    ("{{ '{:>100000000}'.format(1) }}", 'str.format: a width of 100000000 is over the cap'),
    ("{{ '%100000000s' % 'x' }}", 'a % format: a width of 100000000 is over the cap'),
    ("{{ 'x' ~ ('y' * 200000) ~ ('z' * 200000) }}", 'joining strings with ~ makes more than 262144 characters'),
    ("{% set ns = namespace(s='x') %}{% for i in range(60) %}{% set ns.s = ns.s ~ ns.s %}{% endfor %}{{ ns.s }}",
     'joining strings with ~'),
    ("{% for i in range(100000) %}{{ 'x' * 100 }}{% endfor %}", 'renders to more than 262144 characters'),
    ("{{ 10 ** 100000000 }}", '10 ** 100000000 is over the cap of 65536 bits'),
    ("{{ 'ab'.replace('a', 'x' * 200000) * 2 }}", 'repeating 200001 characters or items 2 times'),
    ("{{ 'x' * 200000 + 'y' * 200000 }}", 'adding 200000 and 200000 characters'),
]


@pytest.mark.parametrize(('template', 'message'), HUGE)
def test_a_template_that_would_grow_past_the_cap_is_an_error_naming_the_field(template, message):
    tracemalloc.start()
    try:
        with pytest.raises(templating.TemplateError) as caught:
            templating.render(template, {}, 'args[0]')
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert caught.value.field == 'args[0]'
    assert message in caught.value.message
    assert peak < 8 * MAX_FIELD_BYTES * 4  # never the 100 MB (or more) the template asks for


@pytest.mark.parametrize(('template', 'expected'), [
    ("{{ 'x' * 1000 }}", 'x' * 1000),
    ("{{ '%s rows of 1000000' % 3 }}", '3 rows of 1000000'),
    ("{{ '%-5s|' % 'ab' }}", 'ab   |'),
    ("{{ '{:>6}'.format('ab') }}", '    ab'),
    ("{{ 'a,b'|replace(',', ';') }}", 'a;b'),
    ("{{ x | default(1000000) }}", '1000000'),
    ("{{ 2 ** 64 }}", str(2 ** 64)),
    ("{{ 'abc' ~ 'def' }}", 'abcdef'),
    ("{{ (range(3) | list) + [3] }}", '[0, 1, 2, 3]'),
])
def test_ordinary_templates_render_as_before(template, expected):
    assert templating.render(template, {}, 'args[0]') == expected


def test_a_field_rendered_over_256_kib_in_bytes_names_the_field_and_its_size():
    # 100,000 three-byte characters: 300,000 bytes, under the character bound of the sandbox but over the byte cap
    with pytest.raises(templating.TemplateError) as caught:
        templating.render_fields(['echo'], [], {'OUT': "{{ '€' * 100000 }}"}, {})
    assert caught.value.field == 'env.OUT'
    assert caught.value.message == f'rendered to 300000 bytes, over the cap of {MAX_FIELD_BYTES} bytes (256 KiB) ' \
                                   'for a templated field'


def test_a_tasks_fields_together_are_capped_at_1_mib():
    args = ["{{ 'x' * 200000 }}"] * 6
    with pytest.raises(templating.TemplateError) as caught:
        templating.render_fields(['echo'], args, {}, {})
    assert caught.value.field == 'command, args and env'
    assert f'rendered to 1200004 bytes together, over the cap of {MAX_TASK_BYTES} bytes (1 MiB)' in caught.value.message
    assert len(templating.render_fields(['echo'], args[:5], {}, {}).args) == 5
