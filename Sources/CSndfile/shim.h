// libsndfile (Debian's libsndfile1-dev): media decodes MP3 (through mpg123) and Opus in Ogg to mute
// time ranges of them, and writes the muted result as FLAC.
#include <sndfile.h>
