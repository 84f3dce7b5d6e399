/* Stand-in for Mbed's hal/us_ticker_api.h (signatures only); see ../mbed.h. */
#pragma once
#include <stdint.h>
typedef struct { uint32_t frequency; uint32_t bits; } ticker_info_t;
#ifdef __cplusplus
extern "C" {
#endif
uint32_t us_ticker_read(void);
const ticker_info_t *us_ticker_get_info(void);
#ifdef __cplusplus
}
#endif
