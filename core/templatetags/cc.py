from django import template

register = template.Library()


@register.filter
def get_item(mapping, key):
    return mapping.get(key, key)


@register.filter
def mask_url(url):
    """A URL with any user:password@ shown as ***@."""
    from core.egress import mask_url as masked

    return masked(url)
