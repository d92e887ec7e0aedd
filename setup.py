"""Installs the `foldtree2` and `emprot` packages; every setting is read from settings.ini (one source)."""
from configparser import ConfigParser
import setuptools

cfg = ConfigParser(delimiters=['='])
cfg.read('settings.ini', encoding='utf-8')
cfg = cfg['DEFAULT']

requirements = cfg.get('requirements', '').split()
dev_requirements = cfg.get('dev_requirements', '').split()
console_scripts = [s.strip() for s in cfg.get('console_scripts', '').strip().splitlines() if s.strip()]

setuptools.setup(
    name=cfg['lib_name'],
    version=cfg['version'],
    description=cfg['description'],
    author=cfg['author'],
    author_email=cfg['author_email'],
    license='Apache-2.0',
    python_requires='>=' + cfg['min_python'],
    packages=['foldtree2', 'emprot'],
    include_package_data=True,
    package_data={'foldtree2': ['configs/*', 'example_data/*', 'example_data/*/*'], 'emprot': ['configs/*']},
    install_requires=requirements,
    extras_require={'dev': dev_requirements, 'test': dev_requirements},
    entry_points={'console_scripts': console_scripts},
    zip_safe=False,
)
