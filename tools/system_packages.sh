#!/bin/sh
# Debian packages for QGIS and its Python, from the newest QGIS this Debian release offers.
#
#   tools/system_packages.sh            install or upgrade when needed (fast when current)
#   QGIS_SUITE=bookworm tools/...       take QGIS from that suite instead (e.g. the release's own 3.22)
#
# By default QGIS comes from <codename>-backports (3.40 on Debian 12, 3.44 on Debian 13): backports
# have a lower priority than the release, so a plain `apt-get install qgis` would take the older one.
# The numeric Python stack (numpy, scipy, matplotlib, pyproj, GDAL) comes from Debian too: it is what
# QGIS's own Python is built against, and pip adds only what is missing or too old (see Makefile).
set -eu

BASE_PACKAGES="qgis python3-qgis python3-venv python3-pyproj python3-numpy python3-scipy python3-matplotlib python3-gdal"
# shapely: the distribution's where it is 2.x (Debian 13), since QGIS >= 3.40 imports shapely itself
# and a wheel's bundled GEOS would then mix with QGIS's. Where it is older (Debian 12), `make setup`
# builds shapely 2 on the system's GEOS, which needs its headers and a compiler.
SHAPELY_FROM_DEBIAN="python3-shapely"
SHAPELY_BUILD="libgeos-dev python3-dev gcc g++"

. /etc/os-release
codename=${VERSION_CODENAME:?cannot tell the Debian release from /etc/os-release}
suite=${QGIS_SUITE:-$codename-backports}

as_root() {
    if [ "$(id -u)" != 0 ]; then
        echo "Missing or outdated Debian packages ($BASE_PACKAGES and shapely's from $suite); run make as root." >&2
        exit 1
    fi
}

updated=
if [ "$suite" != "$codename" ] && ! grep -rqs -- "$suite" /etc/apt/sources.list /etc/apt/sources.list.d/; then
    as_root
    cat >"/etc/apt/sources.list.d/$suite.sources" <<EOF
Types: deb
URIs: http://deb.debian.org/debian
Suites: $suite
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
EOF
    apt-get update -q
    updated=1
fi

add_shapely() {
    shapely=$(apt-cache policy python3-shapely 2>/dev/null | awk '/Candidate:/ {print $2}')
    if [ -n "$shapely" ] && [ "$shapely" != "(none)" ] && dpkg --compare-versions "$shapely" ge 2; then
        PACKAGES="$BASE_PACKAGES $SHAPELY_FROM_DEBIAN"
    else
        PACKAGES="$BASE_PACKAGES $SHAPELY_BUILD"
    fi
}
add_shapely

# Current when every package is installed and QGIS is the candidate of the chosen suite.
candidate() { apt-cache -o "APT::Default-Release=$suite" policy qgis 2>/dev/null | awk '/Candidate:/ {print $2}'; }
installed=$(dpkg-query -W -f '${Version}' qgis 2>/dev/null || true)
if dpkg -s $PACKAGES >/dev/null 2>&1 && [ -n "$installed" ]; then
    wanted=$(candidate)
    if [ -z "$wanted" ] || [ "$wanted" = "(none)" ] || [ "$wanted" = "$installed" ]; then
        exit 0
    fi
fi

as_root
if [ -z "$updated" ]; then apt-get update -q; fi
add_shapely
wanted=$(candidate)
if [ -z "$wanted" ] || [ "$wanted" = "(none)" ]; then
    echo "No QGIS package in $suite or the release; check /etc/apt/sources.list*." >&2
    exit 1
fi
echo "Installing QGIS $wanted from $suite (installed: ${installed:-none})"
DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends -t "$suite" $PACKAGES
